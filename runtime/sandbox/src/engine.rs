//! The process-wide engine, linker, component cache and epoch ticker.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::bindings::{Plugin as PluginBindings, PluginPre};
use crate::cache::PrecompiledCache;
use crate::circuit::{CircuitBreakerConfig, CircuitBreakers};
use crate::error::LoadError;
use crate::imports::check_imports;
use crate::network::{AddressFilter, AnyAddress, Resolver, SystemResolver};
use crate::plugin::{Digest, Plugin};
use crate::state::StepState;

/// How a [`Sandbox`] is set up. One per process.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Where precompiled components are cached; `None` compiles in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Steps that may run at once; sizes the pooling allocator.
    pub max_concurrent_steps: u32,
    /// The largest linear memory any step may be granted, in bytes.
    pub max_memory_bytes: u64,
    /// A second guard on the addresses egress connects to, after each grant's network
    /// policy (which blocks internal networks). Tests use [`LoopbackOnly`](crate::LoopbackOnly)
    /// so a policy bug can never send traffic off the machine.
    pub address_filter: Arc<dyn AddressFilter>,
    /// How egress destinations' names are resolved.
    pub resolver: Arc<dyn Resolver>,
    /// How often the epoch advances: the granularity of wall-clock limits.
    pub epoch_tick: Duration,
    /// When egress to a destination that keeps failing is paused, for every step this
    /// sandbox runs; `failures: 0` turns the breaker off. Default: 5 failures, 30 s.
    pub circuit_breaker: CircuitBreakerConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_concurrent_steps: 64,
            max_memory_bytes: 1 << 30,
            address_filter: Arc::new(AnyAddress),
            resolver: Arc::new(SystemResolver),
            epoch_tick: Duration::from_millis(5),
            circuit_breaker: CircuitBreakerConfig::default(),
        }
    }
}

/// Runs steps: one engine, one linker, pre-linked components cached by digest.
pub struct Sandbox {
    pub(crate) engine: Engine,
    linker: Linker<StepState>,
    plugins: Mutex<HashMap<Digest, Arc<Plugin>>>,
    cache: Option<PrecompiledCache>,
    pub(crate) config: SandboxConfig,
    /// The egress circuit breakers, shared by every step.
    pub(crate) circuits: Arc<CircuitBreakers>,
    _epoch_ticker: EpochTicker,
}

/// Why a [`Sandbox`] could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// wasmtime rejected the configuration.
    #[error("wasmtime engine: {0}")]
    Engine(String),
    /// The precompiled cache directory could not be created.
    #[error("precompiled cache directory: {0}")]
    Cache(#[from] std::io::Error),
    /// The epoch ticker thread could not be started.
    #[error("epoch ticker thread: {0}")]
    Ticker(std::io::Error),
}

impl Sandbox {
    /// Creates the engine (pooling allocator, fuel, epochs), links WASI, wasi-http and
    /// relo's interfaces, and starts the epoch ticker.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let mut linker = Linker::<StepState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        PluginBindings::add_to_linker::<StepState, HasSelf<StepState>>(&mut linker, |state| state)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(PrecompiledCache::open(dir, &engine)?),
            None => None,
        };
        let epoch_ticker = EpochTicker::start(engine.clone(), config.epoch_tick)?;
        Ok(Self {
            engine,
            linker,
            plugins: Mutex::new(HashMap::new()),
            cache,
            circuits: Arc::new(CircuitBreakers::new(config.circuit_breaker)),
            config,
            _epoch_ticker: epoch_ticker,
        })
    }

    /// Loads a component: checks its imports, then compiles it (or loads it from the
    /// precompiled cache) and links it. Loading the same bytes again is a cache hit.
    ///
    /// A refusal is recorded as a `plugin.refused` event in `scope` before it is
    /// returned.
    pub fn load(
        &self,
        bytes: &[u8],
        evidence: &dyn EvidenceSink,
        scope: &Scope,
    ) -> Result<Arc<Plugin>, LoadError> {
        let digest = Digest::of(bytes);
        let span = tracing::info_span!("plugin.load", %digest, size = bytes.len(), source = tracing::field::Empty);
        let _entered = span.enter();
        if let Some(plugin) = self.cached(&digest) {
            span.record("source", "memory");
            return Ok(plugin);
        }
        match self.compile(&digest, bytes) {
            Ok((plugin, source)) => {
                span.record("source", source);
                let plugin = Arc::new(plugin);
                self.plugins
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(digest, Arc::clone(&plugin));
                Ok(plugin)
            }
            Err(err) => {
                tracing::warn!(code = err.code(), "plugin refused: {err}");
                evidence.enqueue(EvidenceRecord::new(
                    scope.clone(),
                    None,
                    EvidenceEvent::PluginRefused {
                        digest: digest.to_hex(),
                        code: err.code().to_owned(),
                        reason: err.to_string(),
                    },
                ));
                Err(err)
            }
        }
    }

    /// Drops a loaded component from memory (the on-disk cache keeps it).
    pub fn evict(&self, digest: &Digest) {
        self.plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(digest);
    }

    fn cached(&self, digest: &Digest) -> Option<Arc<Plugin>> {
        self.plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .cloned()
    }

    fn compile(&self, digest: &Digest, bytes: &[u8]) -> Result<(Plugin, &'static str), LoadError> {
        check_imports(bytes)?;
        let cached = self
            .cache
            .as_ref()
            .and_then(|cache| cache.load(digest, &self.engine));
        let (component, source) = match cached {
            Some(component) => (component, "disk"),
            None => {
                let component = Component::new(&self.engine, bytes)
                    .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                if let Some(cache) = &self.cache {
                    cache.store(digest, &component)?;
                }
                (component, "compiled")
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Ok((
            Plugin {
                digest: *digest,
                pre,
            },
            source,
        ))
    }
}

fn engine_config(config: &SandboxConfig) -> Config {
    let slots = config.max_concurrent_steps.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(16))
        .total_memories(slots.saturating_mul(4))
        .total_tables(slots.saturating_mul(16))
        .total_stacks(slots)
        .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX));
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        // Trap messages name the trap, not wasm offsets: without the address map the
        // precompiled code is smaller, and the cold start from the cache faster.
        .generate_address_map(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    wasm
}

/// The one thread that advances the engine's epoch, stopped when the sandbox drops.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> Result<Self, SandboxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("relo-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(SandboxError::Ticker)?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
