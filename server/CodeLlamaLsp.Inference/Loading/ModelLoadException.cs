// The one exception type model loading throws: a checkpoint that is missing, malformed or unsupported.
// Its message names the file, the tensor and what was expected versus found, so users can act on it.
namespace CodeLlamaLsp.Inference.Loading;

/// <summary>A model could not be located, parsed or validated; the message says where and why.</summary>
public sealed class ModelLoadException : Exception
{
    public ModelLoadException()
    {
    }

    public ModelLoadException(string message)
        : base(message)
    {
    }

    public ModelLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
