using System.Security.Cryptography;
using Quantize.Onnx.Model;
using Quantize.Onnx.Quantization;
using Quantize.Onnx.Reporting;
using Quantize.Onnx.Tests.TestModels;
using DataLocation = Quantize.Onnx.Model.Proto.TensorProto.Types.DataLocation;

namespace Quantize.Onnx.Tests.Model;

/// <summary>
/// The large-model path (tensors kept on disk, <see cref="ExternalDataScope"/>) on small models: the
/// deferral size is lowered so every weight takes it, and the result must equal the in-memory path's.
/// </summary>
public sealed class LargeModelTests : IDisposable
{
    private const long Deferred = 512;

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public static TheoryData<string> Recipes => ["static", "dynamic", "fp16", "weight4", "static-fp16-weights", "static-no-equalize"];

    [Theory]
    [MemberData(nameof(Recipes))]
    public void Deferred_weights_give_the_same_model_as_inlined_weights_and_the_source_is_untouched(string recipe)
    {
        var net = recipe == "static" ? TestNets.ConvNet(width: 16) : TestNets.Mlp();
        var (model, calibration) = PrepareExternal(net);
        var sourceHashes = Hashes(Path.GetDirectoryName(model)!);
        var options = Options(recipe);

        var inlined = new Quantizer(options).Run(model, calibration, _folder.File("inlined.onnx"));
        var deferred = new Quantizer(options with { DeferTensorMinBytes = Deferred }).Run(model, calibration, _folder.File("deferred.onnx"));

        // The source had external data, so both outputs have a data file named after them; the work folder is gone.
        Assert.Equal(["deferred.onnx", "deferred.onnx.data", "inlined.onnx", "inlined.onnx.data"],
            Directory.GetFileSystemEntries(_folder.Path).Select(Path.GetFileName).Where(n => n!.Contains(".onnx", StringComparison.Ordinal)).Order());
        var written = ModelLoader.Parse(File.ReadAllBytes(_folder.File("deferred.onnx")), "deferred.onnx");
        Assert.Contains(ModelTensors.All(written), t => t.Tensor.DataLocation == DataLocation.External);
        Assert.All(ModelTensors.All(written).Where(t => t.Tensor.DataLocation == DataLocation.External),
            t => Assert.Equal("deferred.onnx.data", t.Tensor.ExternalData.Single(e => e.Key == "location").Value));

        if (recipe == "weight4")
        {
            // The packed 4-bit weights land in the output's data file too (while quantizing they go through the spill file).
            var nbits = written.Graph.Node.Where(n => n.OpType == "MatMulNBits").ToList();
            Assert.NotEmpty(nbits);
            Assert.All(nbits, n => Assert.Equal(DataLocation.External, written.Graph.Initializer.Single(t => t.Name == n.Input[1]).DataLocation));
        }

        // Same graph and byte-identical weights (loading inlines them again).
        var a = ModelLoader.Load(_folder.File("inlined.onnx"));
        var b = ModelLoader.Load(_folder.File("deferred.onnx"));
        Assert.Equal(a.Graph, b.Graph);
        Assert.Equal(inlined.Output, deferred.Output);
        // Sizes count the deferred tensors' bytes; only the location entries of the graph differ (< 100 bytes a tensor).
        Assert.InRange(deferred.Fp32Bytes, inlined.Fp32Bytes, inlined.Fp32Bytes * 1.02);
        int external = ModelTensors.All(written).Count(t => t.Tensor.DataLocation == DataLocation.External);
        Assert.InRange(deferred.Int8Bytes, inlined.Int8Bytes, inlined.Int8Bytes + (100 * external));
        Assert.Equal(sourceHashes, Hashes(Path.GetDirectoryName(model)!));

        // ONNX Runtime runs the written model (from its path, data file beside it) as close to FP32 as the in-memory path's.
        var sqnr = QuantizeTestKit.Sqnr(model, _folder.File("deferred.onnx"), net);
        Assert.All(sqnr.Values, db => Assert.True(db >= 20, $"SQNR {db:F1} dB"));
        Assert.Equal(QuantizeTestKit.Sqnr(model, _folder.File("inlined.onnx"), net), sqnr);
    }

    [Fact]
    public void Deferred_weights_of_a_truncated_data_file_are_QNT1004_before_anything_runs()
    {
        var (model, calibration) = PrepareExternal(TestNets.Mlp());
        var data = model + ".data";
        File.WriteAllBytes(data, File.ReadAllBytes(data)[..^8]);

        var e = Assert.Throws<QuantizeException>(() =>
            new Quantizer(QuantizeTestKit.Options() with { DeferTensorMinBytes = Deferred }).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.ExternalDataUnreadable, e.Code);
        Assert.False(File.Exists(_folder.File("out.onnx")));
        Assert.DoesNotContain(Directory.GetDirectories(_folder.Path), d => d.Contains(".work-", StringComparison.Ordinal));
    }

    [Fact]
    public void Output_whose_data_file_would_replace_the_source_data_file_is_QNT1006_and_the_source_stays()
    {
        var net = TestNets.Mlp();
        var (_, calibration) = PrepareExternal(net);
        var folder = _folder.File("source");
        ModelWriter.Save(net.Model, Path.Combine(folder, "int8.onnx"), inlineSizeLimit: net.Model.CalculateSize() - 1);
        File.Move(Path.Combine(folder, "int8.onnx"), Path.Combine(folder, "fp32.onnx")); // its data file is still int8.onnx.data
        var before = Hashes(folder);

        var e = Assert.Throws<QuantizeException>(() => new Quantizer(QuantizeTestKit.Options() with { Mode = QuantizationMode.Dynamic })
            .Run(Path.Combine(folder, "fp32.onnx"), calibration, Path.Combine(folder, "int8.onnx")));

        Assert.Equal(ErrorCodes.OutputNotWritable, e.Code);
        Assert.Contains("source model's own data file", e.Message);
        Assert.Equal(before, Hashes(folder));
    }

    [Fact]
    public void Deferred_weights_of_a_missing_data_file_are_QNT1004()
    {
        var (model, calibration) = PrepareExternal(TestNets.Mlp());
        File.Delete(model + ".data");

        var e = Assert.Throws<QuantizeException>(() =>
            new Quantizer(QuantizeTestKit.Options() with { DeferTensorMinBytes = Deferred }).Run(model, calibration, _folder.File("out.onnx")));

        Assert.Equal(ErrorCodes.ExternalDataUnreadable, e.Code);
    }

    [Fact]
    public void Inside_a_scope_the_loader_leaves_large_tensors_in_the_data_file_and_reads_them_on_demand()
    {
        var net = TestNets.Mlp();
        var (model, _) = PrepareExternal(net);
        var expected = net.Model.Graph.Initializer.ToDictionary(t => t.Name, t => t);
        using var scope = ExternalDataScope.Begin(_folder.File("out.onnx"), Deferred);

        var loaded = ModelLoader.Load(model);

        Assert.True(scope.SourceHadExternalData);
        var deferred = loaded.Graph.Initializer.Where(t => t.DataLocation == DataLocation.External).ToList();
        Assert.NotEmpty(deferred);
        Assert.All(deferred, t => Assert.False(t.HasRawData));
        Assert.All(loaded.Graph.Initializer.Except(deferred), t => Assert.True(t.RawData.Length < Deferred));
        Assert.All(deferred, t => Assert.Equal(TensorValues.ReadFloats(expected[t.Name]), TensorValues.ReadFloats(t)));
        Assert.True(loaded.CalculateSize() < 2048, $"{loaded.CalculateSize()} bytes"); // what every ORT session gets
    }

    [Fact]
    public void Tensors_below_the_deferral_size_that_exceed_the_in_memory_budget_are_deferred_largest_first()
    {
        var net = TestNets.Mlp();
        var (model, _) = PrepareExternal(net);
        var sizes = net.Model.Graph.Initializer.ToDictionary(t => t.Name, t => (long)t.RawData.Length);
        var external = ModelTensors.All(ModelLoader.Parse(File.ReadAllBytes(model), "model.onnx")).Where(t => t.Tensor.DataLocation == DataLocation.External)
            .Select(t => t.Tensor.Name).ToHashSet();
        var total = external.Sum(n => sizes[n]);
        var budget = total / 3;
        // No tensor reaches the deferral size (1 GiB); together they are three times the budget.
        using var scope = ExternalDataScope.Begin(_folder.File("out.onnx"), 1L << 30, inMemoryBudget: budget, deferFloor: 1);

        var loaded = ModelLoader.Load(model);

        var deferred = loaded.Graph.Initializer.Where(t => t.DataLocation == DataLocation.External).Select(t => t.Name).ToList();
        var inMemory = external.Except(deferred).ToList();
        Assert.NotEmpty(deferred);
        Assert.True(inMemory.Sum(n => sizes[n]) <= budget, $"{inMemory.Sum(n => sizes[n])} bytes in memory, budget {budget}");
        Assert.All(inMemory, n => Assert.True(sizes[n] < deferred.Min(d => sizes[d]), $"{n} stayed in memory though larger than a deferred tensor"));
        Assert.Equal(deferred.Min(d => sizes[d]), scope.DeferMinBytes);
        Assert.Equal(scope.DeferMinBytes / 8, scope.SpillMinBytes);

        // Without the budget (the default 512 MiB) nothing this small is deferred.
        using var roomy = ExternalDataScope.Begin(_folder.File("out2.onnx"), 1L << 30);
        Assert.DoesNotContain(ModelLoader.Load(model).Graph.Initializer, t => t.DataLocation == DataLocation.External);
        Assert.Equal(1L << 30, roomy.DeferMinBytes);
    }

    [Fact]
    public void A_run_over_the_in_memory_budget_writes_the_same_model_as_the_in_memory_path()
    {
        var net = TestNets.ConvNet(width: 16);
        var (model, calibration) = PrepareExternal(net);
        var options = Options("static");

        var inlined = new Quantizer(options).Run(model, calibration, _folder.File("inlined.onnx"));
        var budget = new Quantizer(options with { InMemoryTensorBudgetBytes = 1024, DeferTensorFloorBytes = 1 }).Run(model, calibration, _folder.File("budget.onnx"));

        // Deferred tensors carry location entries, so the model measures a few bytes more when any was deferred.
        Assert.True(budget.Fp32Bytes > inlined.Fp32Bytes, $"nothing was deferred: {budget.Fp32Bytes} vs {inlined.Fp32Bytes} bytes");
        Assert.Equal(ModelLoader.Load(_folder.File("inlined.onnx")).Graph, ModelLoader.Load(_folder.File("budget.onnx")).Graph);
    }

    [Fact]
    public void A_single_file_model_over_the_budget_is_held_on_disk_while_quantizing_and_still_written_as_one_file()
    {
        var net = TestNets.ConvNet(width: 16);
        var (model, calibration) = QuantizeTestKit.Prepare(net, _folder.Path);
        var before = File.ReadAllBytes(model);
        var options = Options("static");

        var inlined = new Quantizer(options).Run(model, calibration, _folder.File("inlined.onnx"));
        var budget = new Quantizer(options with { InMemoryTensorBudgetBytes = 1024, DeferTensorFloorBytes = 1 }).Run(model, calibration, _folder.File("budget.onnx"));

        // Its initializers went to the spill file (location entries: a few bytes more), yet the output is one file as
        // the source was, with the same graph and bytes as the in-memory path's; the source is untouched.
        Assert.True(budget.Fp32Bytes > inlined.Fp32Bytes, $"nothing was spilled: {budget.Fp32Bytes} vs {inlined.Fp32Bytes} bytes");
        Assert.False(File.Exists(_folder.File("budget.onnx.data")));
        Assert.Equal(File.ReadAllBytes(_folder.File("inlined.onnx")), File.ReadAllBytes(_folder.File("budget.onnx")));
        Assert.Equal(before, File.ReadAllBytes(model));
        Assert.DoesNotContain(Directory.GetDirectories(_folder.Path), d => d.Contains(".work-", StringComparison.Ordinal));
    }

    [Fact]
    public void Latency_is_measured_with_weight_pre_packing_unless_too_many_weights_are_on_disk_and_then_the_reports_say_so()
    {
        var net = TestNets.Mlp();
        var (model, calibration) = PrepareExternal(net);
        var options = Options("static") with { DeferTensorMinBytes = Deferred };

        var packed = new Quantizer(options).Run(model, calibration, _folder.File("packed.onnx"));
        var unpacked = new Quantizer(options with { PrepackMaxBytes = 1 }).Run(model, calibration, _folder.File("unpacked.onnx"));

        Assert.True(packed.Latency.Prepacked);
        Assert.False(unpacked.Latency.Prepacked);
        Assert.DoesNotContain("without weight pre-packing", HtmlReport.Render(packed), StringComparison.Ordinal);
        Assert.Contains("without weight pre-packing", HtmlReport.Render(unpacked), StringComparison.Ordinal);
        Assert.Equal(ModelLoader.Load(_folder.File("packed.onnx")).Graph, ModelLoader.Load(_folder.File("unpacked.onnx")).Graph); // timing only
    }

    [Fact]
    public void Inside_a_scope_large_tensors_are_spilled_to_disk_and_read_back()
    {
        var values = Enumerable.Range(0, 1000).Select(i => i * 0.5f).ToArray();
        using (ExternalDataScope.Begin(_folder.File("out.onnx"), deferMinBytes: 1024))
        {
            var large = TensorValues.FromFloats("large", [10, 100], values);
            var small = TensorValues.FromFloats("small", [4], [1, 2, 3, 4]);

            Assert.Equal(DataLocation.External, large.DataLocation);
            Assert.False(large.HasRawData);
            Assert.True(small.HasRawData);
            Assert.Equal(values, TensorValues.ReadFloats(large));
            Assert.Single(Directory.GetDirectories(_folder.Path));
        }

        Assert.Empty(Directory.GetDirectories(_folder.Path)); // the work folder goes with the scope
    }

    [Fact]
    public void A_killed_runs_work_folder_is_deleted_by_the_next_run_and_a_live_runs_is_not()
    {
        var (model, calibration) = PrepareExternal(TestNets.Mlp());
        var output = Directory.CreateDirectory(_folder.File("out")).FullName;
        string Work(string id)
        {
            var folder = Directory.CreateDirectory(Path.Combine(output, $".model.int8.onnx.work-{id}")).FullName;
            File.WriteAllBytes(Path.Combine(folder, "spill.data"), new byte[4096]);
            return folder;
        }

        var killed = Work("0000dead");
        var live = Work("00001ive");
        var recent = Work("0000f00d"); // unowned but young: maybe a run that has not opened its owner file yet
        using var liveOwner = File.Open(Path.Combine(live, "owner.lock"), FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        foreach (var old in new[] { killed, live })
        {
            Directory.SetLastWriteTimeUtc(old, DateTime.UtcNow - ExternalDataScope.AbandonedAfter - TimeSpan.FromMinutes(1));
        }

        new Quantizer(Options("static") with { DeferTensorMinBytes = Deferred }).Run(model, calibration, Path.Combine(output, "model.int8.onnx"));

        Assert.False(Directory.Exists(killed));
        Assert.True(Directory.Exists(live));
        Assert.True(Directory.Exists(recent));
        Assert.Equal([live, recent], Directory.GetDirectories(output).Order(StringComparer.Ordinal)); // and this run's own is gone
    }

    private (string Model, string Calibration) PrepareExternal(TestNet net)
    {
        var modelFolder = Directory.CreateDirectory(_folder.File("source")).FullName;
        var model = Path.Combine(modelFolder, "model.onnx");
        ModelWriter.Save(net.Model, model, inlineSizeLimit: net.Model.CalculateSize() - 1); // every tensor of 1 KB or more in model.onnx.data
        Assert.True(File.Exists(model + ".data"));
        return (model, QuantizeTestKit.WriteCalibration(_folder.File("calibration"), net.InputName, net.InputShape));
    }

    private static QuantizationOptions Options(string recipe)
    {
        var options = QuantizeTestKit.Options();
        return recipe switch
        {
            "static" => options,
            "dynamic" => options with { Mode = QuantizationMode.Dynamic },
            "fp16" => options with { Mode = QuantizationMode.Fp16 },
            "weight4" => options with { Mode = QuantizationMode.Weight4 },
            "static-fp16-weights" => options with { FloatPrecision = FloatPrecision.Fp16 },
            "static-no-equalize" => options with { Equalize = false, BiasCorrection = false },
            _ => throw new ArgumentOutOfRangeException(nameof(recipe)),
        };
    }

    private static Dictionary<string, string> Hashes(string folder) =>
        Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));
}
