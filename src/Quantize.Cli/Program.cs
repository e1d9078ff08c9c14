using Quantize.Cli;
using Quantize.Common;
using Quantize.Onnx;

// Started by a build: end with it (see ParentWatch).
ParentWatch.Start(Console.Error);
var parse = QuantizeCommandLine.Build().Parse(args);

// A value the parser cannot read is a coded error like every other bad option, so a build shows QNT1201, not a bare exit 1.
if (parse.Errors.Count > 0)
{
    foreach (var error in parse.Errors)
    {
        Console.Error.WriteLine(WorkerProtocol.Diagnostic(null, isError: true, ErrorCodes.InvalidOption, $"{error.Message} (see 'quantize --help')"));
    }

    return 1;
}

return parse.Invoke();
