using Microsoft.Build.Utilities;
using Quantize.MSBuild.Tests.Infrastructure;

namespace Quantize.MSBuild.Tests;

/// <summary>The task that finds a model's external data files from its protobuf header (no build).</summary>
public sealed class FindOnnxExternalDataTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "quantize-extdata-tests", Guid.NewGuid().ToString("N"));

    public FindOnnxExternalDataTests() => Directory.CreateDirectory(Path.Combine(_dir, "Models"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string TestData(params string[] parts) => Path.Combine([Repo.Root, "tests", "Quantize.MSBuild.Tests", "TestData", .. parts]);

    [Fact]
    public void Model_with_external_data_lists_its_data_file_and_the_quantized_data_file_beside_the_output()
    {
        File.Copy(TestData("external", "encoder.onnx"), Path.Combine(_dir, "Models", "encoder.onnx"));
        var model = Model("Models/encoder.onnx");

        var task = Run(model);

        var source = Assert.Single(task.SourceDataFiles);
        Assert.Equal(Path.Combine("Models", "encoder.onnx.data"), source.ItemSpec); // as the project names it
        Assert.Equal("/obj/q/Models/encoder.onnx", source.GetMetadata("QuantizedPath"));
        var quantized = Assert.Single(task.QuantizedDataFiles);
        Assert.Equal("/obj/q/Models/encoder.onnx.data", quantized.ItemSpec);
        Assert.Equal(Path.Combine("Models", "encoder.onnx.data"), quantized.GetMetadata("TargetPath"));
        Assert.Equal(Path.Combine("Models", "encoder.onnx.data"), quantized.GetMetadata("Link"));
        Assert.Equal("PreserveNewest", quantized.GetMetadata("CopyToOutputDirectory"));
        Assert.Equal("None", quantized.GetMetadata("QuantizeItemType"));
    }

    [FifoFact]
    public async System.Threading.Tasks.Task A_named_pipe_as_the_model_is_left_to_the_worker_instead_of_blocking_the_build_node()
    {
        using (var mkfifo = System.Diagnostics.Process.Start("/usr/bin/mkfifo", [Path.Combine(_dir, "Models", "pipe.onnx")]))
        {
            await mkfifo.WaitForExitAsync();
        }

        // Opening a FIFO for reading blocks until a writer comes: in the build node, forever (issue 15, item 2).
        var run = System.Threading.Tasks.Task.Run(() => Run(Model("Models/pipe.onnx")));
        Assert.True(await System.Threading.Tasks.Task.WhenAny(run, System.Threading.Tasks.Task.Delay(TimeSpan.FromSeconds(20))) == run, "the task blocked on the named pipe");
        Assert.Empty((await run).SourceDataFiles);
    }

    [Fact]
    public void An_fp32_copy_of_a_model_with_external_data_is_withheld_with_QNT3104_and_one_of_an_inline_model_is_not()
    {
        File.Copy(TestData("external", "encoder.onnx"), Path.Combine(_dir, "Models", "encoder.onnx"));
        File.Copy(TestData("transformer-block.onnx"), Path.Combine(_dir, "Models", "inline.onnx"));
        var (external, inline) = (Model("Models/encoder.onnx"), Model("Models/inline.onnx"));
        var engine = new MockBuildEngine();
        var task = new FindOnnxExternalData { BuildEngine = engine, Models = [external, inline], FloatCopies = [external, inline], ProjectDirectory = _dir };

        Assert.True(task.Execute());

        Assert.Equal(external.ItemSpec, Assert.Single(task.FloatCopiesNotShipped).ItemSpec);
        var warning = Assert.Single(engine.Warnings);
        Assert.Equal("QNT3104", warning.Code);
        Assert.Contains("encoder.onnx.data", warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("inline")] // every tensor in the .onnx
    [InlineData("garbage")] // not a model: the worker reports it (QNT1002); nothing to copy
    [InlineData("missing")]
    public void Model_without_external_data_lists_nothing(string kind)
    {
        string path = Path.Combine(_dir, "Models", "m.onnx");
        if (kind == "inline")
        {
            File.Copy(TestData("transformer-block.onnx"), path);
        }
        else if (kind == "garbage")
        {
            File.WriteAllBytes(path, [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]);
        }

        var task = Run(Model("Models/m.onnx"));

        Assert.Empty(task.SourceDataFiles);
        Assert.Empty(task.QuantizedDataFiles);
    }

    private TaskItem Model(string relative) => new(Path.Combine(_dir, relative), new Dictionary<string, string>
    {
        ["QuantizedPath"] = "/obj/q/" + relative,
        ["TargetPath"] = relative.Replace('/', Path.DirectorySeparatorChar),
        ["CopyToOutputDirectory"] = "PreserveNewest",
        ["QuantizeItemType"] = "None",
    });

    private FindOnnxExternalData Run(TaskItem model)
    {
        var task = new FindOnnxExternalData { BuildEngine = new MockBuildEngine(), Models = [model], ProjectDirectory = _dir };
        Assert.True(task.Execute());
        return task;
    }
}
