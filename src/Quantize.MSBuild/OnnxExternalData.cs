using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Quantize.MSBuild
{
    /// <summary>
    /// The external data files an ONNX model names, read from the protobuf wire format without parsing the
    /// model: large fields (raw_data) are skipped by seeking, so a 2 GB model costs a few reads. Covers the
    /// graph's initializers, tensors in node attributes (Constant) and subgraphs (If/Loop/Scan bodies).
    /// </summary>
    internal static class OnnxExternalData
    {
        private const int ModelGraph = 7;
        private const int GraphNode = 1;
        private const int GraphInitializer = 5;
        private const int NodeAttribute = 5;
        private const int AttributeTensor = 5;
        private const int AttributeGraph = 6;
        private const int AttributeGraphs = 10;
        private const int AttributeTensors = 11;
        private const int TensorExternalData = 13;
        private const int TensorDataLocation = 14;
        private const int EntryKey = 1;
        private const int EntryValue = 2;
        private const int MaxDepth = 64;

        /// <summary>The distinct locations (relative paths as written in the model); empty when the model is not readable as ONNX.</summary>
        public static IReadOnlyCollection<string> Locations(string modelPath)
        {
            var found = new SortedSet<string>(StringComparer.Ordinal);
            if (Quantize.Common.RegularFile.SpecialKind(modelPath) != null)
            {
                return found; // a FIFO would block the build node; the worker reports it with its code (QNT1001)
            }

            try
            {
                using (var stream = new FileStream(modelPath, FileMode.Open, FileAccess.Read, FileShare.Read, 4096))
                {
                    var reader = new Reader(stream);
                    reader.Message(stream.Length, (field, end) =>
                    {
                        if (field == ModelGraph)
                        {
                            Graph(reader, end, found, 0);
                            return true;
                        }

                        return false;
                    });
                }
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is InvalidDataException)
            {
                // Not readable or not a model: the worker reports it with its own code; nothing to copy here.
                found.Clear();
            }

            return found;
        }

        private static void Graph(Reader reader, long end, SortedSet<string> found, int depth)
        {
            if (depth > MaxDepth)
            {
                throw new InvalidDataException("nested too deep");
            }

            reader.Message(end, (field, fieldEnd) =>
            {
                if (field == GraphInitializer)
                {
                    Tensor(reader, fieldEnd, found);
                    return true;
                }

                if (field == GraphNode)
                {
                    reader.Message(fieldEnd, (nodeField, nodeFieldEnd) =>
                    {
                        if (nodeField != NodeAttribute)
                        {
                            return false;
                        }

                        reader.Message(nodeFieldEnd, (attributeField, attributeEnd) =>
                        {
                            switch (attributeField)
                            {
                                case AttributeTensor:
                                case AttributeTensors:
                                    Tensor(reader, attributeEnd, found);
                                    return true;
                                case AttributeGraph:
                                case AttributeGraphs:
                                    Graph(reader, attributeEnd, found, depth + 1);
                                    return true;
                                default:
                                    return false;
                            }
                        });
                        return true;
                    });
                    return true;
                }

                return false;
            });
        }

        private static void Tensor(Reader reader, long end, SortedSet<string> found)
        {
            bool external = false;
            string? location = null;
            reader.Message(end, (field, fieldEnd) =>
            {
                if (field == TensorDataLocation)
                {
                    external = reader.LastVarint == 1;
                    return true;
                }

                if (field == TensorExternalData)
                {
                    string? key = null, value = null;
                    reader.Message(fieldEnd, (entryField, entryEnd) =>
                    {
                        if (entryField == EntryKey)
                        {
                            key = reader.String(entryEnd);
                            return true;
                        }

                        if (entryField == EntryValue)
                        {
                            value = reader.String(entryEnd);
                            return true;
                        }

                        return false;
                    });
                    if (key == "location")
                    {
                        location = value;
                    }

                    return true;
                }

                return false;
            });
            if (external && !string.IsNullOrEmpty(location))
            {
                found.Add(location!);
            }
        }

        /// <summary>Just enough of the protobuf wire format: varints, and skipping or entering length-delimited fields.</summary>
        private sealed class Reader
        {
            private readonly Stream _stream;

            public Reader(Stream stream) => _stream = stream;

            /// <summary>The value of the varint field just visited (for enums).</summary>
            public ulong LastVarint { get; private set; }

            /// <summary>
            /// Visits the fields up to <paramref name="end"/>. For a length-delimited field <paramref name="visit"/>
            /// gets (field number, end of field) and returns whether it consumed it (else it is skipped); for a
            /// varint field it is called with end -1 after <see cref="LastVarint"/> is set.
            /// </summary>
            public void Message(long end, Func<int, long, bool> visit)
            {
                while (_stream.Position < end)
                {
                    ulong tag = Varint();
                    int field = (int)(tag >> 3);
                    switch ((int)(tag & 7))
                    {
                        case 0:
                            LastVarint = Varint();
                            visit(field, -1);
                            break;
                        case 1:
                            Skip(8);
                            break;
                        case 5:
                            Skip(4);
                            break;
                        case 2:
                            long length = checked((long)Varint());
                            long fieldEnd = _stream.Position + length;
                            if (fieldEnd > end)
                            {
                                throw new InvalidDataException("field past its message");
                            }

                            if (!visit(field, fieldEnd) || _stream.Position != fieldEnd)
                            {
                                _stream.Position = fieldEnd;
                            }

                            break;
                        default:
                            throw new InvalidDataException("unsupported wire type");
                    }
                }
            }

            public string String(long end)
            {
                long length = end - _stream.Position;
                if (length > 4096)
                {
                    throw new InvalidDataException("string too long");
                }

                var bytes = new byte[length];
                int read = 0;
                while (read < bytes.Length)
                {
                    int n = _stream.Read(bytes, read, bytes.Length - read);
                    if (n == 0)
                    {
                        throw new InvalidDataException("truncated");
                    }

                    read += n;
                }

                return Encoding.UTF8.GetString(bytes);
            }

            private ulong Varint()
            {
                ulong value = 0;
                for (int shift = 0; shift < 64; shift += 7)
                {
                    int b = _stream.ReadByte();
                    if (b < 0)
                    {
                        throw new InvalidDataException("truncated");
                    }

                    value |= (ulong)(b & 0x7F) << shift;
                    if ((b & 0x80) == 0)
                    {
                        return value;
                    }
                }

                throw new InvalidDataException("bad varint");
            }

            private void Skip(long count)
            {
                _stream.Position += count;
            }
        }
    }
}
