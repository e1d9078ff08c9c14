using Quantize.Onnx.Model;

namespace Quantize.Onnx.Tests.Model;

/// <summary>
/// A killed writer's temporary file (<c>.m.onnx.&lt;hex&gt;.tmp</c>, 0 B to a whole model) used to stay forever (issue 15,
/// item 6). The next write of the same output removes the ones left unchanged for 10 minutes and held by no writer.
/// </summary>
public sealed class TempFileSweepTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void The_next_write_of_an_output_removes_its_abandoned_temporaries_only()
    {
        var output = _folder.File("m.onnx");
        var abandoned = Temp(".m.onnx.0123456789ab.tmp", age: TimeSpan.FromMinutes(20));
        var young = Temp(".m.onnx.aaaaaaaaaaaa.tmp", age: TimeSpan.FromMinutes(1));
        var held = Temp(".m.onnx.bbbbbbbbbbbb.tmp", age: TimeSpan.FromMinutes(20));
        var otherOutput = Temp(".n.onnx.cccccccccccc.tmp", age: TimeSpan.FromMinutes(20));
        var notOurs = Temp(".m.onnx.backup.tmp", age: TimeSpan.FromMinutes(20));

        using (new FileStream(held, FileMode.Open, FileAccess.ReadWrite, FileShare.None)) // a live writer's
        {
            ModelWriter.Save(ModelTestKit.MatMulModel(), output);
        }

        Assert.False(File.Exists(abandoned));
        Assert.True(File.Exists(young));
        Assert.True(File.Exists(held));
        Assert.True(File.Exists(otherOutput));
        Assert.True(File.Exists(notOurs));
        Assert.Equal(ModelTestKit.MatMulModel(), ModelLoader.Load(output));
    }

    [Fact]
    public void Reports_written_atomically_sweep_theirs_too()
    {
        var report = _folder.File("report.json");
        var abandoned = Temp(".report.json.0123456789ab.tmp", age: TimeSpan.FromHours(2));

        AtomicText.Write(report, "{}", "the report");

        Assert.False(File.Exists(abandoned));
        Assert.Equal("{}", File.ReadAllText(report));
    }

    private string Temp(string name, TimeSpan age)
    {
        var path = _folder.File(name);
        File.WriteAllBytes(path, new byte[16]);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
        return path;
    }
}
