"""The zip container (private): record layouts, the strict reader, the deterministic writer and
the stored/deflate/zstd codecs.  The public face is :class:`carton_format.ZipSource`."""
