//! The one host `bindgen!` of the `plugin` world. Private: users see relo's own types.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    imports: {
        "relo:plugin/secrets.get": async | trappable,
        "relo:plugin/reveal.reveal": async | trappable,
        "relo:plugin/signer.sign-digest": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "relo:plugin/secrets.secret": crate::host::secrets::SecretHandle,
    },
});
