//! A plugin manifest checked against an operator config: every endpoint, secret and
//! signing key the plugin names must be bound by the operator.

use crate::decode::{Path, suggest};
use crate::diagnostic::{Code, Diagnostic};
use crate::v1::operator::OperatorConfig;
use crate::v1::plugin::PluginManifest;

/// The problems of running `plugin` under `config`: endpoints (`{{ endpoints.NAME }}`)
/// that `[endpoints]` does not bind (`unbound-endpoint`), secrets without a binding in
/// `[secrets.bindings."ns/name"]` (`unbound-secret`), and signing keys missing from
/// `[signing.keys]` (`unbound-key`). Each points at the line of the plugin manifest that
/// names the missing thing. A manifest validated alone never reports these.
pub fn check_plugin_against_config(
    plugin: &PluginManifest,
    config: &OperatorConfig,
) -> Vec<Diagnostic> {
    let origin = plugin.origin();
    let config_file = match config.origin().file() {
        "" => "the operator config".to_owned(),
        file => file.to_owned(),
    };
    let mut out = Vec::new();
    let bound: Vec<&str> = config.endpoints.keys().map(|name| name.as_str()).collect();
    for (path, pattern) in plugin.url_patterns() {
        let Some(name) = pattern.endpoint() else {
            continue;
        };
        match config.endpoints.get(name) {
            Some(base) => {
                if let Err(error) = pattern.resolve(base) {
                    out.push(origin.diagnostic(
                        Code::InvalidValue,
                        &path,
                        format!("with `{name}` bound to `{base}`: {}", error.message()),
                    ));
                }
            }
            None => {
                let hint = match suggest(name.as_str(), bound.iter().copied()) {
                    Some(close) => format!("did you mean `{{{{ endpoints.{close} }}}}`?"),
                    None => format!(
                        "bind it under [endpoints] in {config_file}, e.g. `{name} = \"https://…\"`"
                    ),
                };
                out.push(
                    origin
                        .diagnostic(
                            Code::UnboundEndpoint,
                            &path,
                            format!("endpoint `{name}` is not bound in {config_file}"),
                        )
                        .with_hint(hint),
                );
            }
        }
    }
    let plugin_name = &plugin.plugin.name;
    let bindings = config.secret_bindings(plugin_name);
    for name in plugin.secrets.keys() {
        if bindings.is_some_and(|bindings| bindings.contains_key(name)) {
            continue;
        }
        let path = Path::root().field("secrets").field(name.as_str());
        out.push(
            origin
                .diagnostic(
                    Code::UnboundSecret,
                    path.as_str(),
                    format!("secret `{name}` is not bound for `{plugin_name}` in {config_file}"),
                )
                .with_hint(format!(
                    "bind it under [secrets.bindings.\"{plugin_name}\"], e.g. `{name} = \"kv/data/…#field\"`"
                )),
        );
    }
    if let Some(signer) = &plugin.signer {
        for (index, key) in signer.keys.iter().enumerate() {
            if config.signing.keys.contains_key(key) {
                continue;
            }
            let path = Path::root().field("signer").field("keys").index(index);
            out.push(
                origin
                    .diagnostic(
                        Code::UnboundKey,
                        path.as_str(),
                        format!("signing key `{key}` is not defined in {config_file}"),
                    )
                    .with_hint(format!(
                        "define it under [signing.keys], e.g. `{key} = \"keys/{key}.key\"`"
                    )),
            );
        }
    }
    out.sort_by_key(|diagnostic| diagnostic.offset);
    out
}
