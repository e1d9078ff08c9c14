using System.CommandLine;
using System.CommandLine.Help;
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

// The usage lines name the program as users call it (the tool's command), not its assembly: System.CommandLine takes
// the root command's name from the entry assembly (Quantize.Cli.dll), and that name cannot be set.
if (parse.Action is HelpAction)
{
    var help = new StringWriter();
    int exit = parse.Invoke(new InvocationConfiguration { Output = help });
    Console.Out.Write(help.ToString().Replace(
        Environment.NewLine + "  " + RootCommand.ExecutableName + " ", Environment.NewLine + "  onnx-quantize ", StringComparison.Ordinal));
    return exit;
}

return parse.Invoke();
