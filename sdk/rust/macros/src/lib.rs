//! The `#[relo_sdk::step]` attribute. Use it through `relo-sdk`, which re-exports it and
//! documents it; this crate has no other API.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

/// Turns `fn NAME(ctx: &StepContext, input: I) -> Result<O, StepError>` into the
/// component's `run` export.
///
/// `I` is any `serde::de::DeserializeOwned` type and `O` any `serde::Serialize` type
/// (`serde_json::Value` for either takes or returns any JSON). The function is kept as
/// written, so it can be called and tested like any other; the attribute adds a hidden
/// type that implements the export and calls it: the input JSON is parsed into `I`
/// (input that does not fit becomes `StepError::InvalidInput` naming the field, line and
/// column), and the returned `O` is serialized to JSON.
///
/// A component has exactly one step. The expansion refers to `::relo_sdk`, so depend on
/// the crate under that name.
#[proc_macro_attribute]
pub fn step(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

const SIGNATURE: &str = "expected `fn NAME(ctx: &StepContext, input: I) -> Result<O, StepError>`";

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    if !attr.is_empty() {
        return Err(syn::Error::new(attr.span(), "`#[step]` takes no arguments"));
    }
    let function: ItemFn = syn::parse2(item).map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("`#[step]` goes on a function: {SIGNATURE}"),
        )
    })?;
    check_signature(&function)?;

    let name = &function.sig.ident;
    // Spans that point a type error at what the author wrote: an input type that is not
    // `DeserializeOwned` at the input's type (the interpolated type keeps its span), an
    // output that is not `Serialize` at the return type, anything else at the signature.
    let input_type = match function.sig.inputs.iter().nth(1) {
        Some(FnArg::Typed(arg)) => &arg.ty,
        _ => unreachable!("check_signature accepts two typed arguments only"),
    };
    let output_span = match &function.sig.output {
        ReturnType::Type(_, output) => output.span(),
        ReturnType::Default => function.sig.span(),
    };
    let call = quote_spanned! {output_span=>
        ::relo_sdk::__private::run_step::<#input_type, _, _>
    };
    let call = quote_spanned! {function.sig.span()=>
        #call(ctx, &input, #name)
    };
    Ok(quote! {
        #function

        const _: () = {
            #[doc(hidden)]
            struct __ReloStep;

            impl ::relo_sdk::__private::Guest for __ReloStep {
                fn run(
                    ctx: ::relo_sdk::__private::WitStepContext,
                    input: ::std::string::String,
                ) -> ::core::result::Result<
                    ::std::string::String,
                    ::relo_sdk::__private::WitStepError,
                > {
                    #call
                }
            }

            ::relo_sdk::__private::bindings::export!(
                __ReloStep with_types_in ::relo_sdk::__private::bindings
            );
        };
    })
}

fn check_signature(function: &ItemFn) -> syn::Result<()> {
    let sig = &function.sig;
    let refuse = |span: Span, what: &str| {
        Err(syn::Error::new(
            span,
            format!("a step cannot be {what}: {SIGNATURE}"),
        ))
    };
    if let Some(token) = &sig.asyncness {
        return refuse(token.span(), "`async`");
    }
    if let Some(token) = &sig.constness {
        return refuse(token.span(), "`const`");
    }
    if let Some(token) = &sig.unsafety {
        return refuse(token.span(), "`unsafe`");
    }
    if let Some(abi) = &sig.abi {
        return refuse(abi.span(), "`extern`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return refuse(sig.generics.span(), "generic");
    }
    if let Some(variadic) = &sig.variadic {
        return refuse(variadic.span(), "variadic");
    }
    if sig.inputs.len() != 2 {
        return Err(syn::Error::new(
            if sig.inputs.is_empty() {
                sig.paren_token.span.join()
            } else {
                sig.inputs.span()
            },
            format!(
                "a step takes two arguments, the context and the input, not {}: {SIGNATURE}",
                sig.inputs.len()
            ),
        ));
    }
    let mut inputs = sig.inputs.iter();
    if let Some(first) = inputs.next() {
        match first {
            FnArg::Receiver(receiver) => return refuse(receiver.span(), "a method"),
            FnArg::Typed(arg) => {
                if !matches!(&*arg.ty, Type::Reference(reference) if reference.mutability.is_none())
                {
                    return Err(syn::Error::new(
                        arg.ty.span(),
                        format!("the first argument is the context, `&StepContext`: {SIGNATURE}"),
                    ));
                }
            }
        }
    }
    if let Some(FnArg::Receiver(receiver)) = inputs.next() {
        return refuse(receiver.span(), "a method");
    }
    if let ReturnType::Default = sig.output {
        return Err(syn::Error::new(
            sig.paren_token.span.close(),
            format!("a step returns `Result<O, StepError>`: {SIGNATURE}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(attr: TokenStream2, item: TokenStream2) -> String {
        match expand(attr, item) {
            Ok(tokens) => panic!("expected an error, got {tokens}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn expands_a_valid_step() {
        let tokens = expand(
            TokenStream2::new(),
            quote! { fn greet(ctx: &StepContext, input: Input) -> Result<Output, StepError> { todo!() } },
        );
        let text = tokens
            .map(|t| t.to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(text.contains("fn greet"), "{text}");
        assert!(
            text.contains("run_step :: < Input , _ , _ > (ctx , & input , greet)"),
            "{text}"
        );
        assert!(text.contains("export !"), "{text}");
    }

    #[test]
    fn refuses_arguments() {
        assert!(
            error(
                quote!(name = "x"),
                quote!(
                    fn f(c: &C, i: I) -> R {}
                )
            )
            .contains("takes no arguments")
        );
    }

    #[test]
    fn refuses_what_is_not_a_function() {
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    struct S;
                )
            )
            .starts_with("`#[step]` goes on a function")
        );
    }

    #[test]
    fn refuses_async_generic_and_methods() {
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    async fn f(c: &C, i: I) -> R {}
                )
            )
            .contains("`async`")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f<T>(c: &C, i: T) -> R {}
                )
            )
            .contains("generic")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f(c: &C, i: I) -> R
                    where
                        I: Clone,
                    {
                    }
                )
            )
            .contains("generic")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f(&self, i: I) -> R {}
                )
            )
            .contains("a method")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    unsafe fn f(c: &C, i: I) -> R {}
                )
            )
            .contains("`unsafe`")
        );
    }

    #[test]
    fn refuses_wrong_argument_counts() {
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f() -> R {}
                )
            )
            .contains("not 0")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f(i: I) -> R {}
                )
            )
            .contains("not 1")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f(c: &C, i: I, j: J) -> R {}
                )
            )
            .contains("not 3")
        );
    }

    #[test]
    fn refuses_a_context_taken_by_value_or_a_missing_return() {
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f(c: C, i: I) -> R {}
                )
            )
            .contains("the first argument is the context")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f(c: &mut C, i: I) -> R {}
                )
            )
            .contains("the first argument is the context")
        );
        assert!(
            error(
                TokenStream2::new(),
                quote!(
                    fn f(c: &C, i: I) {}
                )
            )
            .contains("a step returns")
        );
    }
}
