using Quantize.Cli;

return QuantizeCommandLine.Build().Parse(args).Invoke();
