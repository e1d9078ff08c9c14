using System.IO;

namespace Quantize.Common;

/// <summary>
/// What the task and the worker process agree on besides the switches (<see cref="WorkerSwitches"/>): the command,
/// the lines the worker prints, the variable it is started with, and the files it writes beside the model and the output.
/// </summary>
internal static class WorkerProtocol
{
    /// <summary>The worker's command: <c>dotnet Quantize.Cli.dll quantize @&lt;response file&gt;</c>.</summary>
    public const string Command = "quantize";

    /// <summary>Starts the one stdout line the task shows at high importance and replays on no-op builds.</summary>
    public const string SummaryPrefix = "Quantize summary: ";

    /// <summary>The build node's process id: the worker ends itself when that process is gone.</summary>
    public const string ParentProcessVariable = "QUANTIZE_PARENT_PID";

    /// <summary>The lock file beside the model: <c>sr.onnx</c> → <c>sr.quantization.json</c>.</summary>
    public const string LockFileSuffix = ".quantization.json";

    /// <summary>Beside an output model with external data: its weights, <c>&lt;output&gt;.data</c>.</summary>
    public const string DataFileSuffix = ".data";

    public static string LockFilePath(string modelPath) => Path.ChangeExtension(modelPath, LockFileSuffix);

    /// <summary>A diagnostic in MSBuild's canonical form, <c>file: error QNT1101: text</c>, as the task reads it.</summary>
    public static string Diagnostic(string? file, bool isError, string code, string text) =>
        (string.IsNullOrEmpty(file) ? "" : file + ": ") + (isError ? "error " : "warning ") + code + ": " + text;
}
