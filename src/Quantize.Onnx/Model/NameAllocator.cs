namespace Quantize.Onnx.Model;

/// <summary>Hands out tensor/node names that do not collide with any existing name, deterministically.</summary>
internal sealed class NameAllocator
{
    private readonly HashSet<string> _taken;

    public NameAllocator(IEnumerable<string> existing) => _taken = new HashSet<string>(existing, StringComparer.Ordinal);

    public string Next(string wanted)
    {
        if (_taken.Add(wanted))
        {
            return wanted;
        }

        for (var i = 1; ; i++)
        {
            var candidate = $"{wanted}_{i}";
            if (_taken.Add(candidate))
            {
                return candidate;
            }
        }
    }
}
