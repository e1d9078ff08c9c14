using System.Globalization;
using System.Text;

namespace Quantize.Benchmarks;

/// <summary>
/// BERT's uncased WordPiece tokenizer (as all-MiniLM-L6-v2 uses it): lower case, accents stripped,
/// split on whitespace and punctuation, then greedy longest-match word pieces ("##" continuations)
/// from the model's vocab.txt, wrapped in [CLS] ... [SEP].
/// </summary>
internal sealed class WordPieceTokenizer
{
    private const int MaxWordLength = 100;
    private readonly Dictionary<string, long> _vocab;

    public WordPieceTokenizer(IEnumerable<string> vocabLines)
    {
        _vocab = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in vocabLines)
        {
            _vocab.TryAdd(line.TrimEnd('\r'), _vocab.Count);
        }
    }

    public long[] Encode(string text)
    {
        var ids = new List<long> { _vocab["[CLS]"] };
        foreach (var word in BasicTokens(text))
        {
            ids.AddRange(WordPieces(word));
        }

        ids.Add(_vocab["[SEP]"]);
        return [.. ids];
    }

    private static IEnumerable<string> BasicTokens(string text)
    {
        var normalized = text.ToLowerInvariant().Normalize(NormalizationForm.FormD);
        var word = new StringBuilder();
        foreach (var c in normalized)
        {
            if (CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.NonSpacingMark)
            {
                continue;
            }

            if (char.IsWhiteSpace(c) || char.IsPunctuation(c) || char.IsSymbol(c))
            {
                if (word.Length > 0)
                {
                    yield return word.ToString();
                    word.Clear();
                }

                if (!char.IsWhiteSpace(c))
                {
                    yield return c.ToString();
                }

                continue;
            }

            word.Append(c);
        }

        if (word.Length > 0)
        {
            yield return word.ToString();
        }
    }

    private IEnumerable<long> WordPieces(string word)
    {
        if (word.Length > MaxWordLength)
        {
            return [_vocab["[UNK]"]];
        }

        var pieces = new List<long>();
        for (var start = 0; start < word.Length;)
        {
            var end = word.Length;
            long? found = null;
            for (; end > start; end--)
            {
                var piece = (start > 0 ? "##" : "") + word[start..end];
                if (_vocab.TryGetValue(piece, out var id))
                {
                    found = id;
                    break;
                }
            }

            if (found is null)
            {
                return [_vocab["[UNK]"]];
            }

            pieces.Add(found.Value);
            start = end;
        }

        return pieces;
    }
}
