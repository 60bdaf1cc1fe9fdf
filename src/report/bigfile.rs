//! Writing an output file of hundreds of megabytes (the score tables at millions of rows) past the
//! page cache where the file system allows it (`O_DIRECT`): the bytes go from a page-aligned buffer
//! of the process to the disk, with no copy into the cache and no cache pages to find for them.
//! At ten million reviews the tables are 1.7 GB; written through the cache, the kernel's copying
//! them into new cache pages (which, in a virtual machine, the host has to provide first) took
//! about 1.8 CPU-seconds of the report's writing (355 of its 2,634 profile samples; README,
//! Benchmark). The disk writes run while the next rows are being formatted, on the thread that
//! waits for them anyway.
//!
//! Where direct writes are refused (tmpfs, some network or FUSE file systems, other platforms than
//! Linux) the file is written through the cache as usual; the bytes are the same either way. On a
//! slow disk the run waits for the disk (cached writes would have left that to the kernel).
//!
//! Owns: the buffer, the direct / cached choice and the file's exact length. Must not: know what
//! the bytes are.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Bytes per direct write (a multiple of every block size a disk uses).
const CHUNK: usize = 8 << 20;
/// Direct writes need their offsets, lengths and buffer addresses aligned to this.
const ALIGN: usize = 4096;

/// A file being written in order.
pub struct BigFile {
    path: PathBuf,
    file: File,
    /// Page-aligned staging buffer of `CHUNK` bytes (`None`: the file is written through the
    /// cache, `cached`).
    staged: Option<memmap2::MmapMut>,
    fill: usize,
    /// Bytes already in the file.
    offset: u64,
    cached: std::io::BufWriter<File>,
}

impl BigFile {
    /// Create (or truncate) `path`.
    pub fn create(path: &Path) -> Result<BigFile> {
        Self::create_with(path, true)
    }

    /// `create`, with direct writes tried or not.
    fn create_with(path: &Path, try_direct: bool) -> Result<BigFile> {
        let cannot = || format!("cannot write {}", path.display());
        let file = File::create(path).with_context(cannot)?;
        let cached = std::io::BufWriter::new(file.try_clone().with_context(cannot)?);
        let mut big = BigFile {
            path: path.to_path_buf(),
            file,
            staged: None,
            fill: 0,
            offset: 0,
            cached,
        };
        if let Some(direct) = open_direct(path).filter(|_| try_direct) {
            if let Ok(map) = memmap2::MmapMut::map_anon(CHUNK) {
                big.file = direct;
                big.staged = Some(map);
            }
        }
        Ok(big)
    }

    fn cannot(&self) -> String {
        format!("cannot write {}", self.path.display())
    }

    /// Append `bytes`.
    pub fn write_all(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let Some(map) = self.staged.as_mut() else {
                let cannot = self.cannot();
                return self.cached.write_all(bytes).with_context(|| cannot);
            };
            let n = bytes.len().min(CHUNK - self.fill);
            map[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            bytes = &bytes[n..];
            if self.fill == CHUNK {
                self.flush_staged(CHUNK)?;
            }
        }
        Ok(())
    }

    /// Write the first `len` staged bytes (a multiple of `ALIGN`) at `offset`, directly; if the
    /// file system refuses, through the cache from then on.
    fn flush_staged(&mut self, len: usize) -> Result<()> {
        let Some(map) = self.staged.as_ref() else {
            return Ok(());
        };
        if write_at(&self.file, &map[..len], self.offset).is_err() {
            // Refused (or failed) direct: the same bytes at the same place through the cache; a
            // second failure is the error to report.
            self.file = self
                .cached
                .get_ref()
                .try_clone()
                .with_context(|| self.cannot())?;
            write_at(&self.file, &map[..len], self.offset).with_context(|| self.cannot())?;
        }
        self.offset += len as u64;
        self.fill = 0;
        Ok(())
    }

    /// Write what is left and close the file at its exact length.
    pub fn finish(mut self) -> Result<()> {
        let cannot = self.cannot();
        if self.staged.is_none() {
            return self.cached.flush().with_context(|| cannot);
        }
        let (fill, padded) = (self.fill, self.fill.next_multiple_of(ALIGN));
        if let Some(map) = self.staged.as_mut() {
            // The last block padded to the alignment, the padding cut off again below.
            map[fill..padded].fill(0);
        }
        if padded > 0 {
            self.flush_staged(padded)?;
        }
        let len = self.offset - (padded - fill) as u64;
        self.file.set_len(len).with_context(|| cannot)?;
        Ok(())
    }
}

/// All of `bytes` at `offset`.
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(bytes)
    }
}

/// `path` (just created) opened again for direct writes, where the system has them.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the pieces and wherever the chunk edges fall, the file holds exactly the bytes
    /// written, in order — written directly (where the temp directory's file system allows it)
    /// and through the cache alike.
    #[test]
    fn file_holds_exactly_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            CHUNK - 1,
            CHUNK,
            CHUNK + 5,
            2 * CHUNK + 4097,
        ];
        for (total, direct) in sizes.into_iter().flat_map(|t| [(t, true), (t, false)]) {
            let bytes: Vec<u8> = (0..total).map(|i| (i * 7 + i / 4093) as u8).collect();
            let path = dir.path().join(format!("t{total}-{direct}"));
            let mut f = BigFile::create_with(&path, direct).unwrap();
            assert_eq!(f.staged.is_some(), direct && open_direct(&path).is_some());
            let mut rest = &bytes[..];
            let mut step = 1usize;
            while !rest.is_empty() {
                let n = step.min(rest.len());
                f.write_all(&rest[..n]).unwrap();
                rest = &rest[n..];
                step = step * 3 + 1;
            }
            f.finish().unwrap();
            let back = std::fs::read(&path).unwrap();
            assert!(back == bytes, "{total} bytes, direct {direct}");
        }
    }
}
