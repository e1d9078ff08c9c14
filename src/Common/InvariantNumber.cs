using System.Globalization;

namespace Quantize.Common;

/// <summary>The numbers settings and accuracy checks are written in: the same text is the same number on every machine.</summary>
internal static class InvariantNumber
{
    /// <summary>A plain decimal number in invariant culture (sign, point, exponent; no thousands separators, no NaN or infinity).</summary>
    public static bool TryParse(string text, out double value) =>
        double.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent,
            CultureInfo.InvariantCulture, out value) && !double.IsNaN(value) && !double.IsInfinity(value);
}
