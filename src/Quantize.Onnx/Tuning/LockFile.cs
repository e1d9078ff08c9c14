using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Quantize.Onnx.Model;

namespace Quantize.Onnx.Tuning;

/// <summary>
/// The tuned configuration of one model, committed next to it (like a package lock file): which model
/// (SHA-256 of the .onnx file), under which checks and base settings, and the recipe that passed. A build
/// whose model, checks and settings match uses the recipe without searching; anything else makes it stale.
/// The text is deterministic (sorted keys, no timestamps) so re-tuning to the same answer changes nothing.
/// </summary>
internal sealed record LockFile(string ModelFile, string ModelSha256, IReadOnlyList<string> Checks,
    IReadOnlyDictionary<string, string> BaseSettings, IReadOnlyDictionary<string, string> Recipe, IReadOnlyList<string> FloatNodes, string Why)
{
    public const string Schema = "quantize-lock/1";

    /// <summary>What the run that wrote the lock measured on its machine (ranges, bias shifts, ship decision); null in lock files that predate it.</summary>
    public RecordedRun? Recorded { get; init; }

    /// <summary>Settings the tuner chooses; the others must match the build's for the lock to be current.</summary>
    public static readonly IReadOnlySet<string> TunedSettings = new HashSet<string>(StringComparer.Ordinal)
    {
        "bias-correction", "calibration-method", "calibration-percentile", "equalize", "exclude-nodes", "per-channel", "symmetric-activations",
    };

    /// <summary>
    /// The model's identity: SHA-256 of the .onnx file, or, when it keeps weights in external data files, of the
    /// file followed by each data file's SHA-256 (sorted, so neither paths nor load order matter: a lock file stays
    /// valid on another machine, and retrained weights in an unchanged .onnx make it stale).
    /// </summary>
    public static string HashOf(string modelPath, IReadOnlyCollection<string> dataFiles)
    {
        var model = HashFile(modelPath);
        if (dataFiles.Count == 0)
        {
            return Convert.ToHexStringLower(model);
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(model);
        foreach (var data in dataFiles.Select(HashFile).OrderBy(Convert.ToHexStringLower, StringComparer.Ordinal))
        {
            hash.AppendData(data);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static byte[] HashFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        return SHA256.HashData(stream);
    }

    /// <summary>The settings that must match: every setting the tuner does not choose.</summary>
    public static SortedDictionary<string, string> BaseOf(QuantizationOptions options) =>
        new(options.ToSettings().Where(kv => !TunedSettings.Contains(kv.Key)).ToDictionary(), StringComparer.Ordinal);

    /// <summary>Why this lock does not apply to the build, or null when it is current.</summary>
    public string? StaleReason(string modelSha256, IReadOnlyList<string> checks, QuantizationOptions options)
    {
        if (!string.Equals(ModelSha256, modelSha256, StringComparison.OrdinalIgnoreCase))
        {
            return "the model changed since it was tuned";
        }

        if (!Checks.SequenceEqual(checks, StringComparer.Ordinal))
        {
            return $"the accuracy checks changed (locked: {Text(Checks)}; now: {Text(checks)})";
        }

        var now = BaseOf(options);
        var changed = now.Keys.Union(BaseSettings.Keys).Where(k => now.GetValueOrDefault(k) != BaseSettings.GetValueOrDefault(k)).Order(StringComparer.Ordinal).ToList();
        return changed.Count == 0 ? null : $"settings changed since it was tuned: {string.Join(", ", changed)}";

        static string Text(IReadOnlyList<string> list) => list.Count == 0 ? "the defaults" : string.Join(";", list);
    }

    /// <summary>The user's options with the locked recipe applied (the user's own exclusions stay).</summary>
    public QuantizationOptions Apply(QuantizationOptions options) => options with
    {
        CalibrationMethod = Enum.Parse<CalibrationMethod>(Recipe["calibration-method"], ignoreCase: true),
        CalibrationPercentile = Recipe["calibration-percentile"] is { Length: > 0 } p ? double.Parse(p, System.Globalization.CultureInfo.InvariantCulture) : options.CalibrationPercentile,
        SymmetricActivations = Recipe["symmetric-activations"] == "true",
        PerChannel = Recipe["per-channel"] == "true",
        Equalize = Recipe["equalize"] == "true",
        BiasCorrection = Recipe["bias-correction"] == "true",
        ExcludedNodes = options.ExcludedNodes.Union(FloatNodes, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal),
    };

    public static LockFile Read(string path)
    {
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            if ((string?)root["schema"] != Schema)
            {
                throw new FormatException($"its schema is '{(string?)root["schema"]}', expected '{Schema}'");
            }

            var recipe = Map(root["recipe"]!.AsObject());
            foreach (var key in TunedSettings.Where(k => k != "exclude-nodes"))
            {
                if (!recipe.ContainsKey(key))
                {
                    throw new FormatException($"its recipe has no '{key}'");
                }
            }

            if (recipe["calibration-percentile"] is { Length: > 0 } percentile
                && (!double.TryParse(percentile, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var p) || p is <= 50 or > 100))
            {
                throw new FormatException($"calibration percentile '{recipe["calibration-percentile"]}' is not a number in (50, 100]");
            }

            if (!Enum.TryParse<CalibrationMethod>(recipe["calibration-method"], ignoreCase: true, out _))
            {
                throw new FormatException($"calibration method '{recipe["calibration-method"]}' is unknown to this version");
            }

            return new LockFile(
                (string)root["model"]!["file"]!, (string)root["model"]!["sha256"]!,
                root["checks"]!.AsArray().Select(c => (string)c!).ToList(),
                Map(root["settings"]!.AsObject()), recipe,
                root["floatNodes"]!.AsArray().Select(c => (string)c!).ToList(),
                (string?)root["why"] ?? "")
            {
                Recorded = root["recorded"] is JsonObject recorded ? RecordedRun.FromJson(recorded) : null,
            };
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NullReferenceException or KeyNotFoundException or IOException or UnauthorizedAccessException)
        {
            throw new QuantizeException(ErrorCodes.LockFileUnreadable, path,
                $"The quantization lock file '{path}' cannot be read ({e.Message}). Delete it and build with tuning enabled (QuantizeTune=true / --tune) to write a new one.", e);
        }
    }

    /// <summary>Writes the lock atomically (temp file, then rename) with sorted keys and LF line ends.</summary>
    public void Write(string path)
    {
        var root = new JsonObject
        {
            ["schema"] = Schema,
            ["comment"] = "Written by Quantize.MSBuild (accuracy tuning, or QuantizeLock / --lock). Commit this file: while the model, the checks and the settings are unchanged, builds reuse this configuration without searching, and its recorded ranges and decisions, so every build machine writes the same bytes.",
            ["model"] = new JsonObject { ["file"] = ModelFile, ["sha256"] = ModelSha256 },
            ["checks"] = new JsonArray([.. Checks.Select(c => (JsonNode)c)]),
            ["settings"] = Object(BaseSettings),
            ["recipe"] = Object(Recipe),
            ["floatNodes"] = new JsonArray([.. FloatNodes.Select(n => (JsonNode)n)]),
            ["why"] = Why,
        };
        if (Recorded is not null)
        {
            root["recorded"] = Recorded.ToJson();
        }

        var text = root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })
            .ReplaceLineEndings("\n") + "\n";
        AtomicText.Write(path, text, $"the quantization lock file '{path}'");
    }

    private static SortedDictionary<string, string> Map(JsonObject o) =>
        new(o.ToDictionary(kv => kv.Key, kv => (string?)kv.Value ?? ""), StringComparer.Ordinal);

    private static JsonObject Object(IReadOnlyDictionary<string, string> values)
    {
        var o = new JsonObject();
        foreach (var (k, v) in values.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            o[k] = v;
        }

        return o;
    }
}
