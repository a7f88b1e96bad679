//! OLE compound files (CFB): a bounded reader of sectors, directory and streams.
