//! relo-sandbox against bare wasmtime, side by side in one run, printed as a Markdown
//! table of medians and ratios (the figures in `docs/benchmarks.md`).
//!
//! ```sh
//! cargo bench -p relo-sandbox --bench step
//! ```
//!
//! - warm step: a fresh store, instantiation and `run` of `echo` on a tiny input, through
//!   `Sandbox::run` (grant, limits, evidence made durable) vs bare wasmtime (the same
//!   component, pooling allocator, WASI linked, a fresh store per call, typed call);
//! - cold start: loading the 1.7 MB `bench-large` component from relo's verified on-disk
//!   cache vs compiling it, and vs wasmtime's unchecked `Component::deserialize`;
//! - denied host call: `secrets.get` of an undeclared secret, decision and evidence
//!   enqueue included, per call (a step making 10 000 calls minus one making none).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use relo_evidence::{MemorySink, Scope};
use relo_policy::{Grant, Limits};
use relo_sandbox::{LoopbackOnly, Plugin, Sandbox, SandboxConfig, StepContext, StepRequest};
use tokio::runtime::Runtime;
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker, Lower, ResourceTable,
};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Median wall time of one call of `f`, measured in `batches` batches of `per_batch`.
fn median<F: FnMut()>(batches: usize, per_batch: u32, mut f: F) -> Duration {
    for _ in 0..per_batch {
        f();
    }
    let mut samples: Vec<Duration> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            start.elapsed() / per_batch
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn read(component: &str) -> Vec<u8> {
    std::fs::read(relo_test_components::path(component).expect("known component")).expect("built")
}

fn request(input: &str, evidence: Arc<MemorySink>) -> StepRequest {
    StepRequest {
        context: StepContext {
            run_id: "bench".into(),
            step_id: "echo".into(),
            attempt: 1,
        },
        input: input.into(),
        grant: Arc::new(Grant::deny_all()),
        // The denied-call figure makes thousands of refused calls in one step: what is
        // measured is their cost, not the budget that would stop them.
        limits: Limits {
            host_calls: u64::MAX,
            ..Limits::default()
        },
        workspace: None,
        evidence,
        credentials: Default::default(),
    }
}

fn relo_step(runtime: &Runtime, sandbox: &Sandbox, plugin: &Plugin, input: &str) {
    let outcome =
        runtime.block_on(sandbox.run(plugin, request(input, Arc::new(MemorySink::new()))));
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

/// The step's context record, as the component model lowers it.
#[derive(ComponentType, Lower)]
#[component(record)]
struct Context {
    #[component(name = "run-id")]
    run_id: String,
    #[component(name = "step-id")]
    step_id: String,
    attempt: u32,
}

/// The step's error variant, as the component model lifts it.
#[derive(ComponentType, Lift)]
#[component(variant)]
enum StepError {
    #[component(name = "invalid-input")]
    InvalidInput(String),
    #[component(name = "failed")]
    Failed(String),
    #[component(name = "denied")]
    Denied(String),
}

struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Bare wasmtime: pooling allocator, WASI linked, nothing of relo's.
struct Bare {
    engine: Engine,
    pre: InstancePre<BareState>,
    run: ComponentExportIndex,
}

fn bare_engine() -> Engine {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(64);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).expect("engine")
}

impl Bare {
    fn new(bytes: &[u8]) -> Self {
        let engine = bare_engine();
        let component = Component::new(&engine, bytes).expect("compiles");
        let mut linker = Linker::<BareState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
        // `echo` imports relo's types-only interface and nothing else of relo's.
        linker
            .instance("relo:plugin/types@0.1.0")
            .expect("types instance");
        let pre = linker.instantiate_pre(&component).expect("links");
        let (_, step) = component
            .get_export(None, "relo:plugin/step@0.1.0")
            .expect("step export");
        let (_, run) = component
            .get_export(Some(&step), "run")
            .expect("run export");
        Self { engine, pre, run }
    }

    async fn call(&self, input: &str) -> String {
        let mut store = Store::new(
            &self.engine,
            BareState {
                wasi: WasiCtxBuilder::new().build(),
                table: ResourceTable::new(),
            },
        );
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiates");
        let run = instance
            .get_typed_func::<(Context, &str), (Result<String, StepError>,)>(&mut store, &self.run)
            .expect("typed run");
        let context = Context {
            run_id: "bench".into(),
            step_id: "echo".into(),
            attempt: 1,
        };
        let (result,) = run
            .call_async(&mut store, (context, input))
            .await
            .expect("runs");
        match result {
            Ok(output) => output,
            Err(
                StepError::InvalidInput(message)
                | StepError::Failed(message)
                | StepError::Denied(message),
            ) => {
                panic!("echo failed: {message}")
            }
        }
    }
}

fn main() {
    let runtime = Runtime::new().expect("tokio");
    let cache = tempfile::tempdir().expect("tempdir");
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(cache.path().to_owned()),
        address_filter: Arc::new(LoopbackOnly),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let load = |bytes: &[u8]| {
        sandbox
            .load(bytes, &MemorySink::new(), &Scope::Control)
            .expect("loads")
    };

    // Warm step.
    let echo_bytes = read("echo");
    let echo = load(&echo_bytes);
    let bare = Bare::new(&echo_bytes);
    let input = r#"{"version":"1.2.3"}"#;
    let bare_warm = median(15, 400, || {
        black_box(runtime.block_on(bare.call(input)));
    });
    let relo_warm = median(15, 400, || relo_step(&runtime, &sandbox, &echo, input));

    // Cold start of a 1.7 MB component.
    let large = read("bench-large");
    let large_plugin = load(&large);
    let digest = large_plugin.digest();
    drop(large_plugin);
    let relo_cold = median(15, 5, || {
        sandbox.evict(&digest);
        black_box(load(&large));
    });
    let engine = bare_engine();
    let compile = median(3, 1, || {
        black_box(Component::new(&engine, &large).expect("compiles"));
    });
    let serialized = Component::new(&engine, &large)
        .expect("compiles")
        .serialize()
        .expect("serializes");
    let raw_deserialize = median(15, 5, || {
        // SAFETY: the bytes were produced by `serialize` on this engine just above.
        #[expect(
            unsafe_code,
            reason = "the baseline is wasmtime's own unchecked deserialize"
        )]
        let component = unsafe { Component::deserialize(&engine, &serialized) };
        black_box(component.expect("deserializes"));
    });

    // Denied host call.
    let asker = load(&read("secrets-undeclared"));
    const CALLS: u32 = 10_000;
    let with_calls = median(9, 3, || {
        relo_step(
            &runtime,
            &sandbox,
            &asker,
            &format!("{{\"repeat\":{CALLS}}}"),
        )
    });
    let without = median(9, 3, || {
        relo_step(&runtime, &sandbox, &asker, "{\"repeat\":0}")
    });
    let per_denial = with_calls.saturating_sub(without) / CALLS;

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("| figure | relo | baseline | ratio | budget |");
    println!("|---|---|---|---|---|");
    println!(
        "| warm step (`echo`, tiny input) | {} | bare wasmtime {} | {:.2}× | ≤ 1.5× |",
        micros(relo_warm),
        micros(bare_warm),
        ratio(relo_warm, bare_warm)
    );
    println!(
        "| cold start, 1.7 MB component, from relo's verified cache | {} | compiling {} | {:.3}× | ≤ 5 ms |",
        millis(relo_cold),
        millis(compile),
        ratio(relo_cold, compile)
    );
    println!(
        "| the same, vs wasmtime's unchecked deserialize | {} | deserialize {} | {:.2}× | — |",
        millis(relo_cold),
        millis(raw_deserialize),
        ratio(relo_cold, raw_deserialize)
    );
    println!(
        "| denied host call (`secrets.get`, decision + evidence enqueue) | {} per call | a step making no calls {} | — | ≤ 2 µs |",
        micros(per_denial),
        micros(without)
    );
}
