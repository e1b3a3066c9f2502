//! The on-disk cache of precompiled components.
//!
//! A cache entry is `<digest>-<engine>.cwasm` beside `<digest>-<engine>.blake3`, the
//! BLAKE3 hash of the precompiled bytes recorded when relo wrote them (BLAKE3 rather
//! than SHA-256 because it is several times faster on the multi-megabyte precompiled
//! code, and this hash is on the cold-start path). Loading precompiled
//! code is only safe for bytes relo produced itself, so an entry is deserialized only
//! when its bytes match the recorded hash; anything else is recompiled and rewritten.
//! The directory must be as well protected as the relo home.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::plugin::Digest;

/// Precompiled components in one directory, for one engine configuration.
#[derive(Debug)]
pub(crate) struct PrecompiledCache {
    dir: PathBuf,
    engine_tag: String,
}

impl PrecompiledCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        // Private to the owner: what is loaded from here is executed (after its hash check).
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt as _;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_tag: format!("{:016x}", hasher.finish()),
        })
    }

    fn paths(&self, digest: &Digest) -> (PathBuf, PathBuf) {
        let stem = format!("{digest}-{}", self.engine_tag);
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.blake3")),
        )
    }

    /// The cached component for `digest`, if its bytes match the recorded hash.
    pub(crate) fn load(&self, digest: &Digest, engine: &Engine) -> Option<Component> {
        let (code_path, hash_path) = self.paths(digest);
        let recorded = fs::read_to_string(&hash_path).ok()?;
        let code = fs::read(&code_path).ok()?;
        if blake3::hash(&code).to_hex().as_str() != recorded.trim() {
            tracing::warn!(%digest, path = %code_path.display(), "precompiled cache entry does not match its recorded hash; recompiling");
            return None;
        }
        #[expect(
            unsafe_code,
            reason = "wasmtime requires unsafe to load precompiled code; these bytes match the hash relo recorded when it wrote them"
        )]
        // SAFETY: the bytes are exactly those produced by `Component::serialize` for this
        // engine configuration (the hash recorded at write time matches).
        let component = unsafe { Component::deserialize(engine, &code) };
        match component {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(%digest, "precompiled cache entry could not be loaded ({err}); recompiling");
                None
            }
        }
    }

    /// Writes the precompiled form of `component`, atomically per file.
    pub(crate) fn store(&self, digest: &Digest, component: &Component) -> std::io::Result<()> {
        let code = component.serialize().map_err(std::io::Error::other)?;
        let (code_path, hash_path) = self.paths(digest);
        write_atomically(&code_path, &code)?;
        write_atomically(&hash_path, blake3::hash(&code).to_hex().as_bytes())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}
