using Google.Protobuf;
using Quantize.Onnx.Model;

namespace Quantize.Onnx.Tests.Model;

/// <summary>The real models of ../shared/corpus survive a parse/serialize round trip byte for byte (skipped where the corpus is absent).</summary>
public sealed class CorpusRoundTripTests
{
    /// <summary>Every .onnx file of the corpus, relative to it.</summary>
    public static TheoryData<string> Models()
    {
        var data = new TheoryData<string>();
        if (Corpus.Unavailable is null)
        {
            foreach (string file in Directory.EnumerateFiles(Corpus.Folder, "*.onnx", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetRelativePath(Corpus.Folder, file));
            }
        }

        return data;
    }

    [CorpusTheory]
    [MemberData(nameof(Models))]
    public void Corpus_model_round_trips_byte_identically(string relativePath)
    {
        string path = Path.Combine(Corpus.Folder, relativePath);
        byte[] original = File.ReadAllBytes(path);

        Assert.Equal(original, ModelLoader.Parse(original, relativePath).ToByteArray());

        using var folder = new TempFolder();
        ModelWriter.Save(ModelLoader.Load(path), folder.File("copy.onnx"));
        Assert.Equal(original, File.ReadAllBytes(folder.File("copy.onnx")));
    }
}
