using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Quantize.Common;

namespace Quantize.MSBuild
{
    /// <summary>
    /// For models that keep weights in external data files: lists those files (inputs of the quantization;
    /// their items are not copied to bin/, the quantized model has its own) and the quantized model's data
    /// file (<c>&lt;quantized model&gt;.data</c>, copied beside it). Cheap: reads only the model's headers.
    /// </summary>
    public sealed class FindOnnxExternalData : Task
    {
        /// <summary>The models (<c>_QuantizeModel</c>, with <c>QuantizedPath</c> and <c>TargetPath</c>).</summary>
        [Required]
        public ITaskItem[] Models { get; set; } = Array.Empty<ITaskItem>();

        /// <summary>The source data files, relative to the project when inside it, with the model's <c>QuantizedPath</c>.</summary>
        [Output]
        public ITaskItem[] SourceDataFiles { get; private set; } = Array.Empty<ITaskItem>();

        /// <summary>Per model with external data: its quantized data file, with the model's metadata and <c>TargetPath</c>/<c>Link</c> + <c>.data</c>.</summary>
        [Output]
        public ITaskItem[] QuantizedDataFiles { get; private set; } = Array.Empty<ITaskItem>();

        /// <summary>The FP32 copies QuantizeShipFloatModel asks for (the source items, with the model's <c>QuantizedPath</c>).</summary>
        public ITaskItem[] FloatCopies { get; set; } = Array.Empty<ITaskItem>();

        /// <summary>
        /// The FP32 copies of models with external data, which are not shipped (warning QNT3104): the copy would name
        /// its data file by the source's relative location, where bin/ holds the quantized model's data file.
        /// </summary>
        [Output]
        public ITaskItem[] FloatCopiesNotShipped { get; private set; } = Array.Empty<ITaskItem>();

        /// <summary>The project folder (source data items are named relative to it, as the project names them).</summary>
        [Required]
        public string ProjectDirectory { get; set; } = "";

        public override bool Execute()
        {
            var sources = new List<ITaskItem>();
            var quantized = new List<ITaskItem>();
            var notShipped = new List<ITaskItem>();
            foreach (ITaskItem model in Models)
            {
                string modelPath = model.GetMetadata(MetadataNames.FullPath);
                if (!File.Exists(modelPath))
                {
                    continue;
                }

                string folder = Path.GetDirectoryName(modelPath) ?? ".";
                var locations = OnnxExternalData.Locations(modelPath);
                if (locations.Count == 0)
                {
                    continue;
                }

                foreach (string location in locations)
                {
                    string full = Path.GetFullPath(Path.Combine(folder, location));
                    var source = new TaskItem(RelativeToProject(full));
                    source.SetMetadata(MetadataNames.QuantizedPath, model.GetMetadata(MetadataNames.QuantizedPath));
                    sources.Add(source);
                }

                foreach (ITaskItem copy in FloatCopies.Where(c => c.GetMetadata(MetadataNames.QuantizedPath) == model.GetMetadata(MetadataNames.QuantizedPath)))
                {
                    Log.LogWarning(null, Messages.FloatCopyWithExternalData, null, modelPath, 0, 0, 0, 0,
                        Messages.FloatCopyWithExternalDataText, modelPath, string.Join(", ", locations));
                    notShipped.Add(copy);
                }

                var data = new TaskItem(model.GetMetadata(MetadataNames.QuantizedPath) + WorkerProtocol.DataFileSuffix);
                model.CopyMetadataTo(data);
                data.SetMetadata(MetadataNames.QuantizedPath, model.GetMetadata(MetadataNames.QuantizedPath));
                data.SetMetadata(MetadataNames.TargetPath, model.GetMetadata(MetadataNames.TargetPath) + WorkerProtocol.DataFileSuffix);
                data.SetMetadata(MetadataNames.Link, model.GetMetadata(MetadataNames.TargetPath) + WorkerProtocol.DataFileSuffix);
                quantized.Add(data);
            }

            SourceDataFiles = sources.ToArray();
            QuantizedDataFiles = quantized.ToArray();
            FloatCopiesNotShipped = notShipped.ToArray();
            return !Log.HasLoggedErrors;
        }

        private string RelativeToProject(string full)
        {
            string root = Path.GetFullPath(ProjectDirectory).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) + Path.DirectorySeparatorChar;
            var comparison = Path.DirectorySeparatorChar == '\\' ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
            return full.StartsWith(root, comparison) ? full.Substring(root.Length) : full;
        }
    }
}
