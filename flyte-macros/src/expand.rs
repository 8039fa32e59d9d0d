//! Code generation for `#[task]`.
//!
//! The user's function keeps its name, visibility and docs, but now returns a
//! `TaskCall`. Its body moves into an inner `__flyte_body` function; beside
//! it live the task's static metadata, its registry entry, and the adapters
//! that run it from encoded bytes or JSON.

use crate::args::Args;
use crate::ast::{Output, Task};
use crate::valid;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn};

/// Expands `#[task(attr)] item`. On any error the user's item is emitted
/// unchanged beside the errors, so the IDE still sees the function.
pub(crate) fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "#[task] goes on a function: `#[task] fn name(x: i64) -> i64 { ... }`",
            );
            let e = e.to_compile_error();
            return quote! { #item #e };
        }
    };
    let args = Args::parse(attr);
    let task = Task::from_item(&item_fn);
    let mut checked = valid::check(&task);
    if let Ok(args) = &args {
        if let Err(e) = valid::check_args(args, &task) {
            match &mut checked {
                Err(all) => all.combine(e),
                Ok(()) => checked = Err(e),
            }
        }
    }
    match (args, checked) {
        (Ok(args), Ok(())) => generate(&args, &task),
        (args, checked) => {
            let mut errors = args.err();
            if let Err(e) = checked {
                match &mut errors {
                    Some(all) => all.combine(e),
                    None => errors = Some(e),
                }
            }
            let errors = errors.map(|e| e.to_compile_error());
            quote! { #item_fn #errors }
        }
    }
}

fn generate(args: &Args, task: &Task<'_>) -> TokenStream {
    let item = task.item;
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = task.ident();
    let fn_name = ident.to_string();

    // `valid::check` guarantees every parameter is a plain name with a type.
    let idents: Vec<_> = task.params.iter().filter_map(|p| p.ident).collect();
    let tys: Vec<_> = task.params.iter().filter_map(|p| p.ty).collect();
    let names: Vec<String> = idents.iter().map(|i| i.to_string()).collect();

    let out_ty = match task.output {
        Output::Unit => quote!(()),
        Output::Plain(ty) | Output::Fallible { ok: ty } => quote!(#ty),
    };

    // The body, renamed; lint attributes still apply to it.
    let mut body_fn = item.clone();
    body_fn.sig.ident = format_ident!("__flyte_body");
    body_fn.vis = syn::Visibility::Inherited;
    body_fn.attrs.retain(|a| {
        ["allow", "warn", "deny", "expect"]
            .iter()
            .any(|lint| a.path().is_ident(lint))
    });

    let env = match &args.env {
        Some(path) => quote_spanned!(path.span()=> ::flyte::__private::env_ref(&#path)),
        None => quote!(&::flyte::__private::DEFAULT_ENV),
    };
    let name_override = match &args.name {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let retries = match args.retries {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let timeout = match &args.timeout {
        Some((millis, _)) => quote!(::core::option::Option::Some(
            ::core::time::Duration::from_millis(#millis)
        )),
        None => quote!(::core::option::Option::None),
    };
    let backoff = match &args.backoff {
        Some(expr) => quote_spanned!(expr.span()=>
            ::core::option::Option::Some(::flyte::__private::backoff_value(#expr))
        ),
        None => quote!(::core::option::Option::None),
    };
    let is_async = task.is_async();
    let version = code_version(item);
    let cache = match &args.cache {
        Some(variant) => quote!(::core::option::Option::Some(::flyte::Cache::#variant)),
        None => quote!(::core::option::Option::None),
    };
    let cache_version = match &args.cache_version {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let cache_key = cache_key_fn(args, &idents, &tys);

    let call_body = if is_async {
        quote!(__flyte_body(#(#idents),*).await)
    } else {
        quote!(__flyte_body(#(#idents),*))
    };
    let to_result = match task.output {
        Output::Unit => quote!({ #call_body; ::core::result::Result::Ok(()) }),
        Output::Plain(_) => quote!(::core::result::Result::Ok(#call_body)),
        Output::Fallible { .. } => quote! {
            match #call_body {
                ::core::result::Result::Ok(value) => ::core::result::Result::Ok(value),
                ::core::result::Result::Err(error) => {
                    #[allow(unused_imports)]
                    use ::flyte::__private::{ViaAnyhow as _, ViaStdError as _, ViaTaskError as _};
                    ::core::result::Result::Err(
                        (&&&::flyte::__private::ErrorSlot::new(error)).__flyte_into_task_error(),
                    )
                }
            }
        },
    };
    let execution = if is_async {
        quote!(::flyte::__private::Execution::from_future(async move { #to_result }))
    } else {
        quote!(::flyte::__private::Execution::blocking(move || #to_result))
    };

    // Bound checks spanned on the user's types, so a non-serializable type
    // is reported where it is written.
    let input_checks = tys.iter().map(
        |ty| quote_spanned!(ty.span()=> let _ = ::flyte::__private::assert_task_value::<#ty>;),
    );
    let output_check = match task.output {
        Output::Plain(ty) | Output::Fallible { ok: ty } => {
            quote_spanned!(ty.span()=> let _ = ::flyte::__private::assert_task_value::<#ty>;)
        }
        Output::Unit => quote!(),
    };

    // Spanned on the type, so a type that is not a task value is reported
    // once, where it is written.
    let read_params: Vec<_> = idents
        .iter()
        .zip(&tys)
        .zip(&names)
        .map(|((ident, ty), name)| {
            quote_spanned!(ty.span()=> let #ident: #ty = __flyte_reader.param(#name)?;)
        })
        .collect();

    // Spanned like the checks above, with the same bound: a type that is not
    // a task value is still reported once.
    let put_params: Vec<_> = idents
        .iter()
        .zip(&tys)
        .zip(&names)
        .map(|((ident, ty), name)| {
            quote_spanned!(ty.span()=> __flyte_object.put::<#ty>(#name, &#ident)?;)
        })
        .collect();
    let output_json = match task.output {
        Output::Plain(ty) | Output::Fallible { ok: ty } => {
            quote_spanned!(ty.span()=> ::flyte::__private::output_json::<#ty>(&__FLYTE_TASK, __flyte_bytes))
        }
        Output::Unit => quote!(::flyte::__private::output_json::<()>(
            &__FLYTE_TASK,
            __flyte_bytes
        )),
    };

    let outer_params = task.item.sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(pt) => {
            let mut pt = pt.clone();
            if let syn::Pat::Ident(p) = &mut *pt.pat {
                p.mutability = None; // `mut` belongs to the body, not the call
            }
            Some(pt)
        }
        FnArg::Receiver(_) => None,
    });

    quote! {
        #(#attrs)*
        #vis fn #ident(#(#outer_params),*) -> ::flyte::TaskCall<#out_ty> {
            #body_fn

            static __FLYTE_TASK: ::flyte::__private::TaskDef = ::flyte::__private::TaskDef::new(
                #env,
                #fn_name,
                #name_override,
                &[#(#names),*],
                #retries,
                #timeout,
                #backoff,
                #version,
                #is_async,
                ::core::file!(),
                ::core::line!(),
            )
            .with_cache(#cache, #cache_version);

            #cache_key

            fn __flyte_execute(
                __flyte_inputs: (#(#tys,)*),
            ) -> ::flyte::__private::Execution<#out_ty> {
                let (#(#idents,)*) = __flyte_inputs;
                #execution
            }

            fn __flyte_from_bytes(
                __flyte_bytes: &[u8],
            ) -> ::core::result::Result<::flyte::TaskCall<::std::vec::Vec<u8>>, ::flyte::TaskError> {
                let mut __flyte_reader = ::flyte::__private::ParamReader::bytes(&__FLYTE_TASK, __flyte_bytes);
                #(#read_params)*
                __flyte_reader.finish()?;
                ::core::result::Result::Ok(
                    ::flyte::__private::TaskCall::new(&__FLYTE_TASK, (#(#idents,)*), __flyte_execute, __flyte_cache_key)
                        .encode_output(),
                )
            }

            fn __flyte_from_json(
                __flyte_json: ::flyte::__private::serde_json::Value,
            ) -> ::core::result::Result<
                ::flyte::TaskCall<::flyte::__private::serde_json::Value>,
                ::flyte::TaskError,
            > {
                let mut __flyte_reader = ::flyte::__private::JsonParams::new(&__FLYTE_TASK, __flyte_json)?;
                #(#read_params)*
                __flyte_reader.finish()?;
                ::core::result::Result::Ok(
                    ::flyte::__private::TaskCall::new(&__FLYTE_TASK, (#(#idents,)*), __flyte_execute, __flyte_cache_key)
                        .json_output(),
                )
            }

            fn __flyte_io_json(
                __flyte_io: ::flyte::__private::Io,
                __flyte_bytes: &[u8],
            ) -> ::core::result::Result<::flyte::__private::serde_json::Value, ::flyte::TaskError> {
                match __flyte_io {
                    ::flyte::__private::Io::Inputs => {
                        let mut __flyte_reader = ::flyte::__private::ParamReader::bytes(&__FLYTE_TASK, __flyte_bytes);
                        let mut __flyte_object = ::flyte::__private::JsonObject::new(&__FLYTE_TASK);
                        #(#read_params)*
                        #(#put_params)*
                        __flyte_reader.finish()?;
                        ::core::result::Result::Ok(__flyte_object.finish())
                    }
                    ::flyte::__private::Io::Output => #output_json,
                }
            }

            ::flyte::__private::inventory::submit! {
                ::flyte::__private::TaskRegistration::new(
                    &__FLYTE_TASK,
                    __flyte_from_bytes,
                    __flyte_from_json,
                    __flyte_io_json,
                )
            }

            #(#input_checks)*
            #output_check
            ::flyte::__private::TaskCall::new(&__FLYTE_TASK, (#(#idents,)*), __flyte_execute, __flyte_cache_key)
        }
    }
}

/// `__flyte_cache_key`: the canonical encoding of the inputs that enter the
/// cache key (all but `cache_ignore`). A `HashSet` parameter is refused when
/// caching is on: serde shows it as a plain sequence in iteration order, so
/// its encoding differs between processes and would make a key that misses.
fn cache_key_fn(args: &Args, idents: &[&syn::Ident], tys: &[&syn::Type]) -> TokenStream {
    let ignored = args.cache_ignore.as_deref().unwrap_or_default();
    let mut kept = Vec::new();
    let mut refusals = Vec::new();
    for (i, (ident, ty)) in idents.iter().zip(tys).enumerate() {
        if ignored.iter().any(|name| name == *ident) {
            continue;
        }
        let index = syn::Index::from(i);
        let ty_text = quote!(#ty).to_string();
        if ty_text.contains("HashSet") {
            let name = ident.to_string();
            refusals.push(quote! {
                return ::core::result::Result::Err(
                    ::flyte::__private::unordered_input(&__FLYTE_TASK, #name, #ty_text),
                );
            });
        } else {
            kept.push(quote!(&__flyte_inputs.#index));
        }
    }
    let inputs_ty = quote!((#(#tys,)*));
    quote! {
        #[allow(unreachable_code, unused_variables)]
        fn __flyte_cache_key(
            __flyte_inputs: &#inputs_ty,
        ) -> ::core::result::Result<::std::vec::Vec<u8>, ::flyte::TaskError> {
            #(#refusals)*
            ::flyte::__private::cache_key_bytes(&(#(#kept,)*))
        }
    }
}

/// The task's code version: a hash of its signature (without its name) and
/// body as tokens, so formatting and comments do not change it, while any
/// change to the code does. Attributes (docs, `#[task]` itself) are left out.
fn code_version(item: &ItemFn) -> String {
    let sig = &item.sig;
    let (asyncness, inputs, output, block) =
        (&sig.asyncness, &sig.inputs, &sig.output, &item.block);
    let tokens = quote!(#asyncness fn (#inputs) #output #block).to_string();
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(tokens.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::code_version;

    fn version(src: &str) -> String {
        code_version(&syn::parse_str(src).unwrap())
    }

    #[test]
    fn versions_ignore_names_formatting_and_comments_but_not_code() {
        let base = version("fn f(x: i64) -> i64 { x * 2 }");
        assert_eq!(base.len(), 32);
        assert_eq!(
            base,
            version("/// docs\n#[inline] fn g( x : i64 )->i64 {\n  // a comment\n  x*2\n}")
        );
        assert_ne!(base, version("fn f(x: i64) -> i64 { x * 3 }"));
        assert_ne!(base, version("fn f(x: i32) -> i64 { x * 2 }"));
        assert_ne!(base, version("async fn f(x: i64) -> i64 { x * 2 }"));
    }
}
