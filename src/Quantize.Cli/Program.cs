using Quantize.Cli;

// Started by a build: end with it (see ParentWatch).
ParentWatch.Start(Console.Error);
return QuantizeCommandLine.Build().Parse(args).Invoke();
