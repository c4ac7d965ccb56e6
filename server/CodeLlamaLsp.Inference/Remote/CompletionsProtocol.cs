// The JSON of the OpenAI completions API: the request body the engines accept and the streamed
// events they send back, mapped to this project's stop reasons. Written by hand (Utf8JsonWriter,
// JsonDocument) so nothing depends on reflection.
using System.Text.Json;
using CodeLlamaLsp.Inference.Generation;

namespace CodeLlamaLsp.Inference.Remote;

/// <summary>One parsed event of a streamed completion: new text and, on the last one, why it ended.</summary>
internal readonly record struct CompletionEvent(string Text, StopReason? Finished);

/// <summary>Builds completions requests and parses their streamed answers.</summary>
internal static class CompletionsProtocol
{
    /// <summary>The OpenAI API accepts at most this many stop sequences; the rest are applied locally.</summary>
    public const int MaxServerStopStrings = 4;

    private const string BosText = "<s>";

    /// <summary>The request body: model, prompt text, sampling, up to four stop strings, stream on.</summary>
    public static byte[] BuildRequestBody(string model, GenerationRequest request)
    {
        GenerationOptions options = request.Options;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteString("prompt", PromptTextForServer(request.PromptText));
            json.WriteNumber("max_tokens", Math.Max(1, options.MaxNewTokens));
            json.WriteNumber("temperature", options.Temperature);
            json.WriteNumber("top_p", options.TopP);
            if (options.Seed is int seed)
            {
                json.WriteNumber("seed", seed);
            }

            string[] stops = options.StopStrings.Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).Take(MaxServerStopStrings).ToArray();
            if (stops.Length > 0)
            {
                json.WriteStartArray("stop");
                foreach (string stop in stops)
                {
                    json.WriteStringValue(stop);
                }

                json.WriteEndArray();
            }

            json.WriteBoolean("stream", true);
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// The engines tokenize the prompt text themselves and add BOS, so a leading "&lt;s&gt;" written by a
    /// template is dropped; otherwise the model would see BOS followed by the literal text "&lt;s&gt;".
    /// </summary>
    public static string PromptTextForServer(string promptText) =>
        promptText.StartsWith(BosText, StringComparison.Ordinal) ? promptText[BosText.Length..] : promptText;

    /// <summary>True for the "[DONE]" sentinel that ends the stream.</summary>
    public static bool IsDone(string data) => data.AsSpan().Trim().SequenceEqual("[DONE]");

    /// <summary>Parses one "data:" payload; null for events without a choice (for example usage-only ones).</summary>
    public static CompletionEvent? ParseEvent(string data, string endpoint)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(data);
        }
        catch (JsonException e)
        {
            throw new RemoteBackendException(RemoteErrorKind.MalformedStream, $"the completion stream from {endpoint} carried invalid JSON ({e.Message}): {Snippet(data)}", e);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Malformed(endpoint, "an event that is not a JSON object", data);
            }

            if (root.TryGetProperty("error", out JsonElement error))
            {
                throw new RemoteBackendException(RemoteErrorKind.ServerError, $"{endpoint} reported an error during generation: {ErrorText(error)}");
            }

            if (!root.TryGetProperty("choices", out JsonElement choices) || choices.ValueKind != JsonValueKind.Array)
            {
                throw Malformed(endpoint, "an event without a 'choices' array (is this an OpenAI-compatible completions endpoint?)", data);
            }

            if (choices.GetArrayLength() == 0)
            {
                return null;
            }

            JsonElement choice = choices[0];
            if (choice.ValueKind != JsonValueKind.Object)
            {
                throw Malformed(endpoint, "a choice that is not a JSON object", data);
            }

            string text = choice.TryGetProperty("text", out JsonElement textElement) && textElement.ValueKind == JsonValueKind.String
                ? textElement.GetString() ?? string.Empty
                : string.Empty;
            return new CompletionEvent(text, FinishReason(choice));
        }
    }

    /// <summary>The model ids of a GET /v1/models answer: {"data":[{"id":...}, ...]}.</summary>
    public static IReadOnlyList<string> ParseModelIds(string body, string endpoint)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("data", out JsonElement data)
                && data.ValueKind == JsonValueKind.Array)
            {
                return data.EnumerateArray()
                    .Where(model => model.ValueKind == JsonValueKind.Object && model.TryGetProperty("id", out JsonElement id) && id.ValueKind == JsonValueKind.String)
                    .Select(model => model.GetProperty("id").GetString()!)
                    .ToArray();
            }
        }
        catch (JsonException e)
        {
            throw new RemoteBackendException(RemoteErrorKind.MalformedStream, $"{endpoint} answered with invalid JSON ({e.Message}): {Snippet(body)}", e);
        }

        throw new RemoteBackendException(RemoteErrorKind.MalformedStream, $"{endpoint} answered without a 'data' list of models: {Snippet(body)}");
    }

    /// <summary>The readable part of an error body: OpenAI's error.message, vLLM's message, or the raw text.</summary>
    public static string ErrorText(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            JsonElement root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out JsonElement error))
            {
                return ErrorText(error);
            }

            return ErrorText(root);
        }
        catch (JsonException)
        {
            return Snippet(body);
        }
    }

    public static string Snippet(string text)
    {
        string oneLine = text.ReplaceLineEndings(" ").Trim();
        return oneLine.Length <= 300 ? oneLine : oneLine[..300] + "...";
    }

    // vLLM reports which stop string or token ended the answer in stop_reason; TGI says eos_token or
    // stop_sequence; llama.cpp and OpenAI say stop or length. TGI before 2.2.1 sent finish_reason ""
    // on every event (text-generation-inference#2336), so an empty string means "not finished".
    private static StopReason? FinishReason(JsonElement choice)
    {
        if (!choice.TryGetProperty("finish_reason", out JsonElement reason) || reason.ValueKind != JsonValueKind.String || reason.GetString()!.Length == 0)
        {
            return null;
        }

        bool stoppedByString = choice.TryGetProperty("stop_reason", out JsonElement stopReason) && stopReason.ValueKind == JsonValueKind.String;
        return reason.GetString() switch
        {
            "length" => StopReason.MaxTokens,
            "stop_sequence" => StopReason.StopString,
            "stop" when stoppedByString => StopReason.StopString,
            _ => StopReason.StopToken,
        };
    }

    private static string ErrorText(JsonElement error) => error.ValueKind switch
    {
        JsonValueKind.String => Snippet(error.GetString() ?? string.Empty),
        JsonValueKind.Object when error.TryGetProperty("message", out JsonElement message) && message.ValueKind == JsonValueKind.String
            => Snippet(message.GetString() ?? string.Empty),
        _ => Snippet(error.GetRawText()),
    };

    private static RemoteBackendException Malformed(string endpoint, string what, string data) =>
        new(RemoteErrorKind.MalformedStream, $"the completion stream from {endpoint} carried {what}: {Snippet(data)}");
}
