using System.Collections;
using Microsoft.Build.Framework;

namespace Quantize.MSBuild.Tests.Infrastructure;

/// <summary>Records what a task logs, so unit tests can assert codes, files and importance.</summary>
internal sealed class MockBuildEngine : IBuildEngine
{
    public List<BuildErrorEventArgs> Errors { get; } = [];
    public List<BuildWarningEventArgs> Warnings { get; } = [];
    public List<BuildMessageEventArgs> Messages { get; } = [];

    public bool ContinueOnError => false;
    public int LineNumberOfTaskNode => 0;
    public int ColumnNumberOfTaskNode => 0;
    public string ProjectFileOfTaskNode => "test.csproj";

    public void LogErrorEvent(BuildErrorEventArgs e) { lock (Errors) { Errors.Add(e); } }
    public void LogWarningEvent(BuildWarningEventArgs e) { lock (Warnings) { Warnings.Add(e); } }
    public void LogMessageEvent(BuildMessageEventArgs e) { lock (Messages) { Messages.Add(e); } }
    public void LogCustomEvent(CustomBuildEventArgs e) { }
    public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => throw new NotSupportedException();
}
