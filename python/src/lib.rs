//! `ruledeck._ruledeck`: the Python extension module under the `ruledeck` package.
//!
//! Owns: the Python face of the library — compiling decks, bundles, release stores, one
//! decision from a dict (the CLI's result object, exactly) and decisions over Arrow data
//! (`columns.rs`), and turning every failure into a Python exception with a clear message.
//! Must not: reach into the library's stages: it uses the crate-root API (`compile`,
//! `Program`, `Request`, `Engine`, `Store`, `Program::signature`) as any host would.

mod columns;

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, Table, ToPyArrow};
use arrow_schema::Schema;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use ruledeck::engine::{parse_json, Engine, TagsFile};
use ruledeck::{Program, Sources};
use serde_json::{json, Map, Value};

use columns::Plan;

/// This module's own allocations (the output columns above all) come from jemalloc, as
/// Polars' do: glibc maps a fresh region for every column of tens of MB and unmaps it when
/// freed, where jemalloc keeps freed extents for the next batch (`python/bench/bench.py`:
/// 15.5 -> 17.4 M rows/s on two threads).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

create_exception!(_ruledeck, RuledeckError, PyException, "Base class of every ruledeck error.");
create_exception!(
    _ruledeck,
    CompileError,
    RuledeckError,
    "The deck does not compile: `str(e)` is the rendered diagnostics, `e.diagnostics` their JSON form."
);
create_exception!(
    _ruledeck,
    BundleError,
    RuledeckError,
    "A bundle could not be read (corrupt, truncated or from another version)."
);
create_exception!(
    _ruledeck,
    StoreError,
    RuledeckError,
    "A release store refused: missing release, corrupt manifest or bundle."
);
create_exception!(
    _ruledeck,
    RequestError,
    RuledeckError,
    "A request or an input table was refused: unknown scene or instance, a missing key column, a column of the wrong type."
);

fn request_error(message: impl Into<String>) -> PyErr {
    RequestError::new_err(message.into())
}

/// Which release and instance versions a deck loaded from a store stamps on results, as
/// `eval --store` does.
#[derive(Clone)]
struct Stamp {
    release: u64,
    versions: Vec<(String, u64)>,
}

/// A compiled deck: immutable, shareable across threads.
#[pyclass(module = "ruledeck._ruledeck", frozen)]
struct Deck {
    program: Arc<Program>,
    /// Decides dicts when no tag data is given: every loaded tag is missing.
    engine: Engine,
    stamp: Option<Stamp>,
}

fn empty_tags() -> TagsFile {
    TagsFile::from_json(json!({})).expect("an empty tags file is valid")
}

impl Deck {
    fn new(program: Arc<Program>, stamp: Option<Stamp>) -> Deck {
        let engine = Engine::new(program.clone()).with_fallback(empty_tags());
        Deck { program, engine, stamp }
    }

    fn plan(&self, scene: &str, instance: &str, schema: &Schema, strict: bool) -> PyResult<Plan> {
        Plan::new(self.program.clone(), scene, instance, schema, strict).map_err(request_error)
    }
}

/// Rule files and directories (searched for `.rule` files, sorted), compiled as one deck,
/// read and named exactly as the CLI reads them.
#[pyfunction]
fn _compile_paths(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Deck> {
    let (sources, problems) = py.detach(|| ruledeck::load::read_sources(&paths)).map_err(PyValueError::new_err)?;
    if !problems.is_empty() {
        return Err(compile_error(py, &sources, &problems));
    }
    let program = py
        .detach(|| ruledeck::check_sources(sources).and_then(ruledeck::compile_checked))
        .map_err(|e| compile_error(py, &e.sources, &e.diagnostics))?;
    Ok(Deck::new(Arc::new(program), None))
}

/// `(name, source bytes)` pairs, compiled as one deck.
#[pyfunction]
fn _compile_files(py: Python<'_>, files: Vec<(String, Vec<u8>)>) -> PyResult<Deck> {
    let mut sources = Sources::new();
    let mut problems = Vec::new();
    for (name, bytes) in files {
        if bytes.len() > ruledeck::limits::MAX_SOURCE_BYTES {
            sources.add(name.as_str(), "");
            problems.push(
                ruledeck::Diagnostic::unplaced(
                    ruledeck::Code::SourceTooLarge,
                    format!(
                        "`{name}` is {} bytes; the limit is {} bytes",
                        bytes.len(),
                        ruledeck::limits::MAX_SOURCE_BYTES
                    ),
                )
                .with_help("split the deck into several files"),
            );
            continue;
        }
        let (_, problem) = ruledeck::add_file_bytes(&mut sources, &name, bytes);
        problems.extend(problem);
    }
    if !problems.is_empty() {
        return Err(compile_error(py, &sources, &problems));
    }
    let program = py
        .detach(|| ruledeck::check_sources(sources).and_then(ruledeck::compile_checked))
        .map_err(|e| compile_error(py, &e.sources, &e.diagnostics))?;
    Ok(Deck::new(Arc::new(program), None))
}

fn compile_error(py: Python<'_>, sources: &Sources, diagnostics: &[ruledeck::Diagnostic]) -> PyErr {
    let text = ruledeck::diagnostics::render_text(sources, diagnostics);
    let err = CompileError::new_err(text.trim_end().to_string());
    let list: Vec<Value> = diagnostics
        .iter()
        .map(|d| serde_json::to_value(ruledeck::diagnostics::to_json(sources, d)).unwrap_or(Value::Null))
        .collect();
    if let Ok(list) = to_py(py, &Value::Array(list)) {
        let _ = err.value(py).setattr("diagnostics", list);
    }
    err
}

/// JSON value → Python object (dicts keep the key order).
fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            PyList::new(py, items.iter().map(|i| to_py(py, i)).collect::<PyResult<Vec<_>>>()?)?.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, v) in map {
                d.set_item(k, to_py(py, v)?)?;
            }
            d.into_any()
        }
    })
}

/// Python object → JSON value; `at` names the place for errors.
fn from_py(v: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(json!(i));
        }
        if let Ok(u) = v.extract::<u64>() {
            return Ok(json!(u));
        }
        return Err(request_error(format!("{at}: the integer {v} is out of range")));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let f = f.value();
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| request_error(format!("{at}: {f} is not a finite number")));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_string()));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, item) in d.iter() {
            let key: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err(format!("{at}: keys must be strings, not {}", k.get_type())))?;
            let value = from_py(&item, &format!("{at}[{key:?}]"))?;
            map.insert(key, value);
        }
        return Ok(Value::Object(map));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = v.extract()?;
        return items.iter().enumerate().map(|(i, item)| from_py(item, &format!("{at}[{i}]"))).collect();
    }
    // datetime.datetime (and anything else with isoformat): its RFC 3339 text.
    if v.hasattr("isoformat")? {
        let text: String = v.call_method0("isoformat")?.extract()?;
        return Ok(Value::String(text));
    }
    Err(PyTypeError::new_err(format!("{at}: cannot use a {} as a request value", v.get_type())))
}

/// A `tags=` argument: `None`, a dict in the `--tags` file format, or a path to such a file.
fn tags_arg(tags: Option<&Bound<'_, PyAny>>) -> PyResult<Option<TagsFile>> {
    let Some(tags) = tags.filter(|t| !t.is_none()) else { return Ok(None) };
    let doc = if tags.is_instance_of::<PyDict>() {
        from_py(tags, "tags")?
    } else {
        let path: PathBuf = tags.extract().map_err(|_| {
            PyTypeError::new_err(
                "tags must be a dict like {\"user\": {\"u-1\": {\"risk_score\": 12}}} or a path to such a JSON file",
            )
        })?;
        let bytes = ruledeck::files::read_bounded(&path, ruledeck::limits::MAX_DATA_FILE_BYTES)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        parse_json(&bytes).map_err(|e| PyValueError::new_err(format!("`{}`: not valid JSON: {e}", path.display())))?
    };
    TagsFile::from_json(doc).map(Some).map_err(|e| PyValueError::new_err(format!("tags: {e}")))
}

/// Input data for Arrow decisions: one record batch, or a stream of them.
enum ArrowInput {
    Batch(RecordBatch),
    Stream(Box<dyn RecordBatchReader + Send>),
}

fn arrow_input(data: &Bound<'_, PyAny>) -> PyResult<ArrowInput> {
    if data.hasattr("__arrow_c_array__")? && !data.hasattr("num_chunks")? {
        return RecordBatch::from_pyarrow_bound(data)
            .map(ArrowInput::Batch)
            .map_err(|e| request_error(format!("cannot read the input as an Arrow record batch: {e}")));
    }
    if data.hasattr("__arrow_c_stream__")? {
        let reader = arrow_array::ffi_stream::RecordBatchStreamReader::from_pyarrow_bound(data)
            .map_err(|e| request_error(format!("cannot read the input as an Arrow stream: {e}")))?;
        return Ok(ArrowInput::Stream(Box::new(reader)));
    }
    if data.is_instance_of::<PyList>() || data.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = data.extract()?;
        let batches: Vec<RecordBatch> = items
            .iter()
            .map(RecordBatch::from_pyarrow_bound)
            .collect::<PyResult<_>>()
            .map_err(|e| request_error(format!("cannot read the input as Arrow record batches: {e}")))?;
        let Some(first) = batches.first() else {
            return Err(request_error("no record batches given (an empty list has no schema)"));
        };
        let schema = first.schema();
        // Columns are matched to the request once, by the first batch's schema.
        for (i, batch) in batches.iter().enumerate().skip(1) {
            if let Some(problem) = schema_difference(&schema, &batch.schema()) {
                return Err(request_error(format!(
                    "record batch {i} does not have the first batch's columns: {problem}"
                )));
            }
        }
        let reader = arrow_array::RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        return Ok(ArrowInput::Stream(Box::new(reader)));
    }
    Err(PyTypeError::new_err(format!(
        "expected Arrow data (a pyarrow RecordBatch, Table or RecordBatchReader, a Polars DataFrame, \
         or anything with __arrow_c_array__ / __arrow_c_stream__), not {}",
        data.get_type()
    )))
}

/// How `other`'s columns differ from `first`'s (the first difference), if they do.
fn schema_difference(first: &Schema, other: &Schema) -> Option<String> {
    for (i, field) in first.fields().iter().enumerate() {
        match other.fields().get(i) {
            None => return Some(format!("column `{}` is missing", field.name())),
            Some(f) if f.name() != field.name() => {
                return Some(format!("column {i} is `{}`, not `{}`", f.name(), field.name()))
            }
            Some(f) if f.data_type() != field.data_type() => {
                return Some(format!(
                    "column `{}` is {}, not {}",
                    f.name(),
                    columns::py_type(f.data_type()),
                    columns::py_type(field.data_type())
                ))
            }
            Some(_) => {}
        }
    }
    other.fields().get(first.fields().len()).map(|f| format!("column `{}` is extra", f.name()))
}

fn threads_arg(threads: Option<usize>) -> usize {
    threads.filter(|&t| t > 0).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn now_arg(now: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    let Some(now) = now.filter(|n| !n.is_none()) else { return Ok(None) };
    if let Ok(i) = now.extract::<i64>() {
        if !now.is_instance_of::<PyBool>() {
            return Ok(Some(i));
        }
    }
    let text = match from_py(now, "now")? {
        Value::String(s) => s,
        other => return Err(request_error(format!("now must be an RFC 3339 time or whole seconds, not {other}"))),
    };
    ruledeck::time::parse_data(&text).map(Some).ok_or_else(|| {
        request_error(format!(
            "now must be an RFC 3339 time like \"2026-11-21T08:00:00Z\" (with an offset), not {text:?}"
        ))
    })
}

/// Runs `decide` over every batch of `input`; returns a RecordBatch for a batch, a Table
/// for a stream.
fn over_batches<'py>(
    py: Python<'py>,
    input: ArrowInput,
    plan_for: impl Fn(&Schema) -> PyResult<Vec<Plan>>,
    run: impl Fn(&[Plan], &RecordBatch) -> Result<Vec<columns::Part>, String> + Sync,
    schema_of: impl Fn(&[Plan], &Schema) -> arrow_schema::SchemaRef,
) -> PyResult<Bound<'py, PyAny>> {
    match input {
        ArrowInput::Batch(batch) => {
            let plans = plan_for(&batch.schema())?;
            let schema = schema_of(&plans, &batch.schema());
            let out = py.detach(|| run(&plans, &batch).and_then(columns::join)).map_err(request_error)?;
            let out = columns::with_outputs(&batch, schema, out).map_err(|e| request_error(e.to_string()))?;
            out.to_pyarrow(py)
        }
        ArrowInput::Stream(reader) => {
            let input_schema = reader.schema();
            let plans = plan_for(&input_schema)?;
            let schema = schema_of(&plans, &input_schema);
            let mut batches = Vec::new();
            // Read each batch holding the GIL (a Python-backed stream needs it), decide without.
            for batch in reader {
                let batch = batch.map_err(|e| request_error(format!("reading the input stream: {e}")))?;
                let parts = py.detach(|| run(&plans, &batch)).map_err(request_error)?;
                batches.extend(
                    columns::part_batches(&batch, schema.clone(), parts).map_err(|e| request_error(e.to_string()))?,
                );
            }
            Table::try_new(batches, schema).map_err(|e| request_error(e.to_string()))?.into_pyarrow(py)
        }
    }
}

#[pymethods]
impl Deck {
    /// Reads a compiled bundle (`ruledeck build -o deck.rdb`, or `Deck.to_bundle()`).
    #[staticmethod]
    fn from_bundle(py: Python<'_>, data: &[u8]) -> PyResult<Deck> {
        let program = py.detach(|| Program::from_bundle(data)).map_err(|e| BundleError::new_err(e.to_string()))?;
        Ok(Deck::new(Arc::new(program), None))
    }

    /// The deck as a self-checking bundle: bytes that `Deck.from_bundle` reads back.
    fn to_bundle<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.program.to_bundle())
    }

    /// The release this deck was loaded from (`Store.current()` / `.release(n)`), else None.
    #[getter]
    fn release(&self) -> Option<u64> {
        self.stamp.as_ref().map(|s| s.release)
    }

    /// Every `(scene, instance)` of the deck, in declaration order.
    fn instances(&self) -> Vec<(String, String)> {
        self.program.instance_names().into_iter().map(|(s, i)| (s.to_string(), i.to_string())).collect()
    }

    /// One decision: `input` is a request object (keys, pass-through tags by full name,
    /// optional `now`), `tags` the data for loaded tags (a dict or path in the `--tags`
    /// format). Returns the result object `ruledeck eval` prints.
    #[pyo3(signature = (scene, instance, input, tags = None, explain = false))]
    fn decide<'py>(
        &self,
        py: Python<'py>,
        scene: &str,
        instance: &str,
        input: &Bound<'py, PyAny>,
        tags: Option<&Bound<'py, PyAny>>,
        explain: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = from_py(input, "input")?;
        if !input.is_object() {
            return Err(PyTypeError::new_err("input must be a dict of keys, pass-through tags and `now`"));
        }
        let custom = tags_arg(tags)?.map(|t| Engine::new(self.program.clone()).with_fallback(t));
        let engine = custom.as_ref().unwrap_or(&self.engine);
        let mut doc = py
            .detach(|| engine.decide_json(scene, instance, &input, explain))
            .map_err(|e| request_error(e.to_string()))?;
        if let (Some(stamp), Value::Object(map)) = (&self.stamp, &mut doc) {
            let key = format!("{scene}.{instance}");
            let version = stamp.versions.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
            map.insert("release".into(), json!(stamp.release));
            map.insert("version".into(), json!(version));
        }
        to_py(py, &doc)
    }

    /// Decisions for every row of Arrow data (a RecordBatch → a RecordBatch; a Table,
    /// RecordBatchReader, Polars DataFrame or list of batches → a pyarrow Table).
    #[pyo3(signature = (scene, instance, batches, now = None, threads = None))]
    fn decide_arrow<'py>(
        &self,
        py: Python<'py>,
        scene: &str,
        instance: &str,
        batches: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = now_arg(now)?;
        let threads = threads_arg(threads);
        let input = arrow_input(batches)?;
        over_batches(
            py,
            input,
            |schema| Ok(vec![self.plan(scene, instance, schema, true)?]),
            |plans, batch| plans[0].decide(batch, now, threads),
            |plans, schema| plans[0].schema(schema),
        )
    }

    /// The columns `decide_arrow` reads for `scene.instance`: `(name, role, type, key)` with
    /// role `key`, `pass` or `tag`, the type as the deck writes it (`int`, `list<text>`,
    /// `enum(app, h5)`) and, for a tag, the key that loads it. `now` is accepted too.
    #[allow(clippy::type_complexity)]
    fn input_columns(&self, scene: &str, instance: &str) -> PyResult<Vec<(String, String, String, Option<String>)>> {
        let sig = self.program.signature(scene, instance).map_err(|e| request_error(e.to_string()))?;
        let mut out: Vec<(String, String, String, Option<String>)> =
            sig.keys.iter().map(|k| (k.to_string(), "key".to_string(), "text".to_string(), None)).collect();
        for (role, tags) in [("pass", &sig.passes), ("tag", &sig.tags)] {
            out.extend(
                tags.iter().map(|t| {
                    (t.name.to_string(), role.to_string(), columns::type_text(&t.ty), t.key.map(str::to_string))
                }),
            );
        }
        Ok(out)
    }

    /// The schema `decide_arrow` returns for input of `schema` (a pyarrow Schema or
    /// anything with `__arrow_c_schema__`); checks the columns as `decide_arrow` does.
    fn output_schema<'py>(
        &self,
        py: Python<'py>,
        scene: &str,
        instance: &str,
        schema: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let schema = Schema::from_pyarrow_bound(schema)?;
        let plan = self.plan(scene, instance, &schema, true)?;
        plan.schema(&schema).as_ref().to_pyarrow(py)
    }

    fn __repr__(&self) -> String {
        let mut scenes: Vec<&str> = self.program.instance_names().into_iter().map(|(s, _)| s).collect();
        scenes.dedup();
        match &self.stamp {
            Some(s) => format!("<ruledeck.Deck release {} scenes: {}>", s.release, scenes.join(", ")),
            None => format!("<ruledeck.Deck scenes: {}>", scenes.join(", ")),
        }
    }
}

/// Per row, the decisions of `old` and `new` for `scene.instance`, side by side: the input
/// columns, `old.*` and `new.*` output columns, and `changed` (decision, strategy,
/// experiment, group or error differ, as `ruledeck diff --inputs` counts them).
#[pyfunction]
#[pyo3(signature = (old, new, scene, instance, batches, now = None, threads = None))]
#[allow(clippy::too_many_arguments)]
fn diff_arrow<'py>(
    py: Python<'py>,
    old: &Deck,
    new: &Deck,
    scene: &str,
    instance: &str,
    batches: &Bound<'py, PyAny>,
    now: Option<&Bound<'py, PyAny>>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let now = now_arg(now)?;
    let threads = threads_arg(threads);
    let input = arrow_input(batches)?;
    over_batches(
        py,
        input,
        |schema| {
            let plans = vec![old.plan(scene, instance, schema, false)?, new.plan(scene, instance, schema, false)?];
            // Every column must be read by one of the two decks: a typo is still an error.
            for f in schema.fields() {
                if !plans.iter().any(|p| p.reads(f.name())) {
                    old.plan(scene, instance, schema, true).and(new.plan(scene, instance, schema, true))?;
                }
            }
            Ok(plans)
        },
        |plans, batch| columns::diff(&plans[0], &plans[1], batch, now, threads),
        |plans, schema| columns::diff_schema(&plans[0], &plans[1], schema),
    )
}

/// A release store (`ruledeck release --store DIR`), read-only.
#[pyclass(module = "ruledeck._ruledeck", frozen)]
struct Store {
    store: ruledeck::release::Store,
}

impl Store {
    fn load(&self, py: Python<'_>, n: Option<u64>) -> PyResult<Deck> {
        let loaded = py.detach(|| self.store.load(n)).map_err(|e| StoreError::new_err(e.to_string()))?;
        let stamp = Stamp {
            release: loaded.manifest.release,
            versions: loaded.manifest.instances.iter().map(|(k, v)| (k.clone(), v.version)).collect(),
        };
        Ok(Deck::new(loaded.program, Some(stamp)))
    }
}

#[pymethods]
impl Store {
    /// Opens the store at `path` (it must exist).
    #[new]
    fn new(path: PathBuf) -> PyResult<Store> {
        ruledeck::release::Store::open(path)
            .map(|store| Store { store })
            .map_err(|e| StoreError::new_err(e.to_string()))
    }

    /// The current release's deck.
    fn current(&self, py: Python<'_>) -> PyResult<Deck> {
        self.load(py, None)
    }

    /// Release `n`'s deck.
    fn release(&self, py: Python<'_>, n: u64) -> PyResult<Deck> {
        self.load(py, Some(n))
    }

    /// The current release's number (None before the first release).
    fn current_number(&self) -> PyResult<Option<u64>> {
        self.store.current_number().map_err(|e| StoreError::new_err(e.to_string()))
    }
}

#[pymodule]
fn _ruledeck(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Deck>()?;
    m.add_class::<Store>()?;
    m.add_function(wrap_pyfunction!(_compile_files, m)?)?;
    m.add_function(wrap_pyfunction!(_compile_paths, m)?)?;
    m.add_function(wrap_pyfunction!(diff_arrow, m)?)?;
    m.add("RuledeckError", py.get_type::<RuledeckError>())?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    m.add("BundleError", py.get_type::<BundleError>())?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    Ok(())
}
