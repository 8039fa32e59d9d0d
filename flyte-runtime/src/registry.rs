//! The process-wide task registry: every `#[task]`, runnable by name from
//! encoded input (bincode 2 bytes, or JSON keyed by parameter name).

use crate::task::call::TaskCall;
use flyte_core::{codec, ErrorKind, TaskDef, TaskEnvironment, TaskError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map as JsonMap, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// What a task's parameters and output must be.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a task parameter or output: it must be serde-serializable, `Send` and `'static`",
    label = "not `Serialize + DeserializeOwned + Send + 'static`",
    note = "derive the serde traits on your type: `#[derive(serde::Serialize, serde::Deserialize)]`"
)]
pub trait TaskValue: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> TaskValue for T {}

type FromBytes = fn(&[u8]) -> Result<TaskCall<Vec<u8>>, TaskError>;
type FromJson = fn(Value) -> Result<TaskCall<Value>, TaskError>;
type IoJson = fn(Io, &[u8]) -> Result<Value, TaskError>;

/// Which side of a task encoded bytes are.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// Its parameters, as a tuple.
    Inputs,
    /// Its output.
    Output,
}

/// One task's entry, submitted by the code `#[task]` generates.
#[doc(hidden)]
#[derive(Debug)]
pub struct TaskRegistration {
    def: &'static TaskDef,
    from_bytes: FromBytes,
    from_json: FromJson,
    io_json: IoJson,
}

impl TaskRegistration {
    /// An entry for `def`.
    pub const fn new(
        def: &'static TaskDef,
        from_bytes: FromBytes,
        from_json: FromJson,
        io_json: IoJson,
    ) -> Self {
        TaskRegistration {
            def,
            from_bytes,
            from_json,
            io_json,
        }
    }
}

inventory::collect!(TaskRegistration);

/// Every task in the program, by name.
///
/// # Examples
///
/// ```
/// use flyte::prelude::*;
///
/// static ENV: TaskEnvironment = TaskEnvironment::new("my_env");
///
/// #[task(env = ENV)]
/// fn process_item(x: i64) -> i64 {
///     x * 2
/// }
///
/// assert!(flyte::registry().names().any(|name| name == "my_env.process_item"));
///
/// let bytes = flyte::codec::encode(&(3_i64,))?; // the parameters, as a tuple
/// let out = flyte::registry().call_bytes("my_env.process_item", &bytes)?.wait()?;
/// assert_eq!(flyte::codec::decode::<i64>(&out)?, 6);
///
/// let call = flyte::registry().call_json("my_env.process_item", serde_json::json!({"x": 3}))?;
/// assert_eq!(flyte::run(call)?, serde_json::json!(6));
/// # Ok::<(), TaskError>(())
/// ```
#[derive(Debug)]
pub struct Registry {
    tasks: BTreeMap<&'static str, Vec<&'static TaskRegistration>>,
    /// Every shared name, described once when the registry is built.
    clashes: Option<String>,
}

/// The process-wide registry (built on first use).
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut tasks: BTreeMap<&'static str, Vec<&'static TaskRegistration>> = BTreeMap::new();
        for entry in inventory::iter::<TaskRegistration> {
            tasks.entry(entry.def.name()).or_default().push(entry);
        }
        let clashes: Vec<String> = tasks
            .iter()
            .filter(|(_, entries)| entries.len() > 1)
            .map(|(name, entries)| describe_clash(name, entries))
            .collect();
        Registry {
            tasks,
            clashes: (!clashes.is_empty()).then(|| clashes.join("; ")),
        }
    })
}

/// What the registry knows of one task.
#[derive(Debug, Clone, Copy)]
pub struct TaskInfo {
    def: &'static TaskDef,
}

impl TaskInfo {
    /// `"<env>.<fn>"`.
    pub fn name(&self) -> &'static str {
        self.def.name()
    }
    /// The environment it is bound to.
    pub fn env(&self) -> &'static TaskEnvironment {
        self.def.env()
    }
    /// Parameter names in order.
    pub fn params(&self) -> &'static [&'static str] {
        self.def.params()
    }
    /// Its code version (see [`TaskDef::version`]): changes with its code,
    /// not with formatting or comments.
    pub fn version(&self) -> &'static str {
        self.def.version()
    }
    /// The version its cache entries are filed under: the version the task
    /// names (`#[task(cache = "auto", cache_version = "..")]`), else its
    /// code version. Entries under another version are stale.
    pub fn cache_version(&self) -> &'static str {
        self.def.cache_version()
    }
    /// Whether it is an `async fn`.
    pub fn is_async(&self) -> bool {
        self.def.is_async()
    }
    /// Where it is declared, `file:line`.
    pub fn location(&self) -> String {
        self.def.location()
    }
}

impl Registry {
    /// Every task name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tasks.keys().copied()
    }

    /// How many distinct task names there are.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The task named `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnknownTask`] listing the known names;
    /// [`ErrorKind::Config`] when two tasks share the name.
    pub fn task(&self, name: &str) -> Result<TaskInfo, TaskError> {
        self.entry(name).map(|e| TaskInfo { def: e.def })
    }

    /// A call of the task `name` with its parameters encoded by the codec,
    /// as a tuple in parameter order (`codec::encode(&(a, b))`). The call's
    /// output is encoded the same way.
    ///
    /// # Errors
    ///
    /// Unknown or duplicated name (see [`Registry::task`]);
    /// [`ErrorKind::Input`] naming the parameter that did not decode.
    pub fn call_bytes(&self, name: &str, input: &[u8]) -> Result<TaskCall<Vec<u8>>, TaskError> {
        (self.entry(name)?.from_bytes)(input)
    }

    /// A call of the task `name` with its parameters as a JSON object keyed
    /// by parameter name. The call's output is JSON.
    ///
    /// # Errors
    ///
    /// Unknown or duplicated name (see [`Registry::task`]);
    /// [`ErrorKind::Input`] naming a missing, unknown or ill-typed parameter.
    pub fn call_json(&self, name: &str, input: Value) -> Result<TaskCall<Value>, TaskError> {
        (self.entry(name)?.from_json)(input)
    }

    /// The inputs of task `name`, encoded by the codec (as stored with a
    /// run), as a JSON object keyed by parameter name.
    ///
    /// # Errors
    ///
    /// Unknown or duplicated name (see [`Registry::task`]);
    /// [`ErrorKind::Input`] when the bytes are not this task's inputs.
    pub fn inputs_json(&self, name: &str, input: &[u8]) -> Result<Value, TaskError> {
        (self.entry(name)?.io_json)(Io::Inputs, input)
    }

    /// An output of task `name`, encoded by the codec (as stored with an
    /// action), as JSON.
    ///
    /// # Errors
    ///
    /// Unknown or duplicated name (see [`Registry::task`]);
    /// [`ErrorKind::Input`] when the bytes are not this task's output.
    pub fn output_json(&self, name: &str, output: &[u8]) -> Result<Value, TaskError> {
        (self.entry(name)?.io_json)(Io::Output, output)
    }

    /// Checks that no two tasks share a name.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming every shared name and where each task
    /// with it is declared.
    pub fn check(&self) -> Result<(), TaskError> {
        match &self.clashes {
            None => Ok(()),
            Some(clashes) => Err(TaskError::new(ErrorKind::Config, clashes.clone())),
        }
    }

    fn entry(&self, name: &str) -> Result<&'static TaskRegistration, TaskError> {
        match self.tasks.get(name).map(Vec::as_slice) {
            Some([one]) => Ok(one),
            Some(entries) => Err(TaskError::new(
                ErrorKind::Config,
                describe_clash(name, entries),
            )),
            None => Err(TaskError::new(
                ErrorKind::UnknownTask,
                format!(
                    "no task is named `{name}`; the registered tasks are: {}",
                    self.names().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

fn describe_clash(name: &str, entries: &[&'static TaskRegistration]) -> String {
    let places: Vec<String> = entries.iter().map(|e| e.def.location()).collect();
    format!(
        "{} tasks are named `{name}` (at {}): give each a distinct name with \
         #[task(name = \"...\")] or bind them to different environments",
        entries.len(),
        places.join(" and ")
    )
}

/// How much of an input error is kept: serde quotes the value it could
/// not read, and a value may be 100 MB.
const INPUT_ERROR_MAX: usize = 2_048;

fn input_error(def: &TaskDef, message: String) -> TaskError {
    TaskError::new(ErrorKind::Input, cut(message)).with_task(def.name())
}

/// `message`, cut to [`INPUT_ERROR_MAX`] bytes with its length said.
fn cut(mut message: String) -> String {
    if message.len() <= INPUT_ERROR_MAX {
        return message;
    }
    let total = message.len();
    let mut end = INPUT_ERROR_MAX / 2;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!(
        "… [cut: the message quoted the input, {total} bytes in all]"
    ));
    message
}

/// Reads a task's parameters from codec bytes, naming the one that fails.
#[doc(hidden)]
#[derive(Debug)]
pub struct ParamReader<'a> {
    def: &'static TaskDef,
    reader: codec::Reader<'a>,
}

impl<'a> ParamReader<'a> {
    /// A reader over the encoded tuple of `def`'s parameters.
    pub fn bytes(def: &'static TaskDef, input: &'a [u8]) -> Self {
        ParamReader {
            def,
            reader: codec::Reader::new(input),
        }
    }

    /// Decodes the next parameter, `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] naming the task and the parameter.
    pub fn param<T: TaskValue>(&mut self, name: &str) -> Result<T, TaskError> {
        self.reader
            .read::<T>()
            .map_err(|e| input_error(self.def, format!("parameter `{name}`: {}", e.message())))
    }

    /// Checks no bytes are left.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] when the input holds more than the parameters.
    pub fn finish(self) -> Result<(), TaskError> {
        let def = self.def;
        self.reader.finish().map_err(|e| {
            input_error(
                def,
                format!(
                    "{} after the last parameter: the input has too many values",
                    e.message()
                ),
            )
        })
    }
}

/// Builds the JSON object of a task's parameters, keyed by name.
#[doc(hidden)]
#[derive(Debug)]
pub struct JsonObject {
    def: &'static TaskDef,
    object: JsonMap<String, Value>,
}

impl JsonObject {
    /// An empty object for `def`'s parameters.
    pub fn new(def: &'static TaskDef) -> Self {
        JsonObject {
            def,
            object: JsonMap::new(),
        }
    }

    /// Adds parameter `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] when the value has no JSON form.
    pub fn put<T: TaskValue>(&mut self, name: &str, value: &T) -> Result<(), TaskError> {
        let value = serde_json::to_value(value).map_err(|e| {
            input_error(
                self.def,
                format!("parameter `{name}` has no JSON form: {e}"),
            )
        })?;
        self.object.insert(name.to_owned(), value);
        Ok(())
    }

    /// The object.
    pub fn finish(self) -> Value {
        Value::Object(self.object)
    }
}

/// Decodes `def`'s output of type `T` from codec bytes, as JSON.
///
/// # Errors
///
/// [`ErrorKind::Input`] when the bytes are not a `T` or it has no JSON form.
#[doc(hidden)]
pub fn output_json<T: TaskValue>(def: &'static TaskDef, bytes: &[u8]) -> Result<Value, TaskError> {
    let value: T = codec::decode(bytes).map_err(|e| {
        input_error(
            def,
            format!(
                "the stored output is not a {}: {}",
                std::any::type_name::<T>(),
                e.message()
            ),
        )
    })?;
    serde_json::to_value(&value)
        .map_err(|e| input_error(def, format!("the output has no JSON form: {e}")))
}

/// Reads a task's parameters from a JSON object keyed by parameter name.
#[doc(hidden)]
#[derive(Debug)]
pub struct JsonParams {
    def: &'static TaskDef,
    object: JsonMap<String, Value>,
}

impl JsonParams {
    /// Checks `input` is an object (`null` counts as `{}`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] when it is not.
    pub fn new(def: &'static TaskDef, input: Value) -> Result<Self, TaskError> {
        let object = match input {
            Value::Object(object) => object,
            Value::Null => JsonMap::new(),
            other => {
                return Err(input_error(
                    def,
                    format!(
                        "the input must be a JSON object keyed by parameter name ({}), not {other}",
                        param_list(def)
                    ),
                ))
            }
        };
        Ok(JsonParams { def, object })
    }

    /// Takes the parameter `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] when it is missing or of the wrong type.
    pub fn param<T: TaskValue>(&mut self, name: &str) -> Result<T, TaskError> {
        let value = self.object.remove(name).ok_or_else(|| {
            input_error(
                self.def,
                format!(
                    "missing parameter `{name}` (of type {})",
                    std::any::type_name::<T>()
                ),
            )
        })?;
        serde_json::from_value(value).map_err(|e| {
            input_error(
                self.def,
                format!(
                    "parameter `{name}` is not a {}: {e}",
                    std::any::type_name::<T>()
                ),
            )
        })
    }

    /// Checks no unknown keys are left.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`] naming the unknown keys and the real parameters.
    pub fn finish(self) -> Result<(), TaskError> {
        if self.object.is_empty() {
            return Ok(());
        }
        let unknown: Vec<&str> = self.object.keys().map(String::as_str).collect();
        Err(input_error(
            self.def,
            format!(
                "unknown parameter(s) {}; the parameters are: {}",
                unknown.join(", "),
                param_list(self.def)
            ),
        ))
    }
}

fn param_list(def: &TaskDef) -> String {
    if def.params().is_empty() {
        "none".to_owned()
    } else {
        def.params().join(", ")
    }
}
