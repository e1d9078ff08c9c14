using System.Globalization;
using System.Text;

namespace Quantize.Onnx.Samples;

/// <summary>
/// Parses the small subset of Python literal syntax that a .npy header uses: a dict with string
/// keys whose values are strings, True/False/None, integers (also Python 2 "3L"), tuples and lists.
/// Dicts become <see cref="Dictionary{TKey,TValue}"/>, tuples and lists <see cref="List{T}"/>.
/// </summary>
internal sealed class PythonLiteral
{
    private readonly string _text;
    private int _pos;

    private PythonLiteral(string text) => _text = text;

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> on anything else.</summary>
    public static object? Parse(string text)
    {
        var parser = new PythonLiteral(text);
        object? value = parser.ParseValue();
        parser.SkipWhitespace();
        if (parser._pos != text.Length)
        {
            throw new FormatException($"unexpected text after the value at offset {parser._pos}");
        }

        return value;
    }

    private object? ParseValue()
    {
        SkipWhitespace();
        if (_pos >= _text.Length)
        {
            throw new FormatException("unexpected end of header");
        }

        char c = _text[_pos];
        switch (c)
        {
            case '{':
                return ParseDict();
            case '(':
                return ParseSequence(')');
            case '[':
                return ParseSequence(']');
            case '\'':
            case '"':
                return ParseString();
        }

        if (c == '-' || c == '+' || char.IsAsciiDigit(c))
        {
            return ParseInteger();
        }

        if (char.IsAsciiLetter(c))
        {
            int start = _pos;
            while (_pos < _text.Length && (char.IsAsciiLetterOrDigit(_text[_pos]) || _text[_pos] == '_'))
            {
                _pos++;
            }

            string word = _text[start.._pos];
            return word switch
            {
                "True" => true,
                "False" => false,
                "None" => null,
                _ => throw new FormatException($"unexpected word '{word}' at offset {start}"),
            };
        }

        throw new FormatException($"unexpected character '{c}' at offset {_pos}");
    }

    private Dictionary<string, object?> ParseDict()
    {
        var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
        _pos++; // '{'
        while (true)
        {
            SkipWhitespace();
            if (TryConsume('}'))
            {
                return dict;
            }

            if (ParseValue() is not string key)
            {
                throw new FormatException("header dictionary keys must be strings");
            }

            SkipWhitespace();
            Expect(':');
            dict[key] = ParseValue();
            SkipWhitespace();
            if (TryConsume('}'))
            {
                return dict;
            }

            Expect(',');
        }
    }

    private List<object?> ParseSequence(char close)
    {
        var items = new List<object?>();
        _pos++; // '(' or '['
        while (true)
        {
            SkipWhitespace();
            if (TryConsume(close))
            {
                return items;
            }

            items.Add(ParseValue());
            SkipWhitespace();
            if (TryConsume(close))
            {
                return items;
            }

            Expect(',');
        }
    }

    private string ParseString()
    {
        char quote = _text[_pos++];
        var sb = new StringBuilder();
        while (_pos < _text.Length)
        {
            char c = _text[_pos++];
            if (c == quote)
            {
                return sb.ToString();
            }

            if (c == '\\' && _pos < _text.Length)
            {
                c = _text[_pos++];
            }

            sb.Append(c);
        }

        throw new FormatException("unterminated string in header");
    }

    private long ParseInteger()
    {
        int start = _pos;
        if (_text[_pos] is '-' or '+')
        {
            _pos++;
        }

        while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos]))
        {
            _pos++;
        }

        string digits = _text[start.._pos];
        if (_pos < _text.Length && _text[_pos] is 'L' or 'l')
        {
            _pos++; // Python 2 long suffix.
        }

        if (!long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value))
        {
            throw new FormatException($"bad integer '{digits}' at offset {start}");
        }

        return value;
    }

    private void SkipWhitespace()
    {
        while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos]))
        {
            _pos++;
        }
    }

    private bool TryConsume(char c)
    {
        if (_pos < _text.Length && _text[_pos] == c)
        {
            _pos++;
            return true;
        }

        return false;
    }

    private void Expect(char c)
    {
        if (!TryConsume(c))
        {
            string found = _pos < _text.Length ? $"'{_text[_pos]}'" : "end of header";
            throw new FormatException($"expected '{c}' at offset {_pos}, found {found}");
        }
    }
}
