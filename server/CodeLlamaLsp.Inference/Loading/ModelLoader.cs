// Entry point for loading a Llama/GPTQ checkpoint: locate the folder, read the configs, map the weight
// files and bind every tensor the forward pass needs, reporting progress along the way.
namespace CodeLlamaLsp.Inference.Loading;

/// <summary>Loads checkpoints from a folder or the local Hugging Face cache.</summary>
public static class ModelLoader
{
    /// <summary>
    /// Loads <paramref name="model"/> (a folder, or a Hugging Face id <c>org/name</c> at <paramref name="revision"/>).
    /// Throws <see cref="ModelLoadException"/> with a message naming the file and tensor when anything is wrong.
    /// </summary>
    public static LoadedModel Load(string model, string? revision = null, IProgress<LoadProgress>? progress = null)
    {
        progress?.Report(new LoadProgress(0, 0, 0, 0, "Locating model"));
        var location = ModelLocator.Resolve(model, revision);
        progress?.Report(new LoadProgress(0, 0, 0, 0, "Reading config"));
        var config = CheckpointConfigReader.Read(location.Directory);
        progress?.Report(new LoadProgress(0, 0, 0, 0, "Mapping weight files"));
        var tensors = CheckpointTensors.Open(location.Directory, config.ModelFileBaseName, file => progress?.Report(new LoadProgress(0, 0, 0, 0, "Mapping " + Path.GetFileName(file))));
        try
        {
            long bytesTotal = tensors.TotalBytes;
            int tensorsTotal = tensors.TensorNames.Count();
            long bytesDone = 0;
            int tensorsDone = 0;
            progress?.Report(new LoadProgress(0, bytesTotal, 0, tensorsTotal, "Checking tensors"));
            var binder = new LlamaWeightBinder(tensors, config, tensor =>
            {
                bytesDone += tensor.Data.Length;
                tensorsDone++;
                progress?.Report(new LoadProgress(bytesDone, bytesTotal, tensorsDone, tensorsTotal, "Checking tensors"));
            });
            var weights = binder.Bind();
            string tokenizer = Path.Combine(location.Directory, "tokenizer.model");
            progress?.Report(new LoadProgress(bytesTotal, bytesTotal, tensorsTotal, tensorsTotal, "Ready"));
            return new LoadedModel(location.Name, location.Directory, config, weights, File.Exists(tokenizer) ? tokenizer : null, tensors);
        }
        catch
        {
            tensors.Dispose();
            throw;
        }
    }
}
