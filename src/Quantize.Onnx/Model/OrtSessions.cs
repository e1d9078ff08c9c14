using System.Runtime.CompilerServices;
using Microsoft.ML.OnnxRuntime;

namespace Quantize.Onnx.Model;

/// <summary>
/// Every ORT session of the engine is created here from a serialized model. Inside an
/// <see cref="ExternalDataScope"/> with deferred tensors the bytes hold only the graph and small tensors;
/// ORT reads the rest from the scope's work folder, never through a serialized copy of the weights.
/// </summary>
internal static class OrtSessions
{
    /// <summary>ORT's folder for the external data of a model created from bytes (it has no file path to resolve against).</summary>
    private const string ExternalFolderKey = "session.model_external_initializers_file_folder_path";

    /// <summary>
    /// MLAS pre-packs every constant MatMul weight into a buffer of its own: a second, anonymous copy of
    /// the weights next to the (file-backed, reclaimable) loaded ones. Models over
    /// <see cref="ExternalDataScope.DefaultPrepackMaxBytes"/> go without it (their latencies are then slower than an application's).
    /// </summary>
    private const string DisablePrepackingKey = "session.disable_prepacking";

    private static readonly ConditionalWeakTable<SessionOptions, ExternalDataScope> Configured = [];

    /// <summary>Whether sessions created now pre-pack weights: always, except over the active scope's limit of deferred weights.</summary>
    public static bool PrepacksWeights => ExternalDataScope.Current is not { HasDeferredTensors: true } scope || scope.AllowsPrepacking;

    public static InferenceSession Create(byte[] model, SessionOptions options)
    {
        Configure(options);
        return new InferenceSession(model, options);
    }

    public static InferenceSession Create(byte[] model)
    {
        using var options = new SessionOptions();
        return Create(model, options);
    }

    /// <summary>Points <paramref name="options"/> at the active scope's work folder, if it has deferred tensors.</summary>
    public static void Configure(SessionOptions options)
    {
        if (ExternalDataScope.Current is not { HasDeferredTensors: true } scope)
        {
            return;
        }

        scope.ReleaseWriter();

        // Options shared by two sessions (latency comparison) are configured once: ORT warns on every overwrite.
        if (Configured.TryAdd(options, scope))
        {
            options.AddSessionConfigEntry(ExternalFolderKey, scope.Folder);
            if (!PrepacksWeights)
            {
                options.AddSessionConfigEntry(DisablePrepackingKey, "1");
            }
        }
    }
}
