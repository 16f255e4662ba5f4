//! Decisions over Arrow record batches: one request per row, rows split across threads.
//!
//! Owns: mapping input columns to a request's parts (keys, pass-through tags, loaded tags,
//! `now`) with a check of each column's Arrow type up front, the per-row decide loop, and
//! the output columns (decision fields, strategy, experiment, group, bucket, error).
//! Must not: touch Python (everything here runs with the GIL released) or decide anything
//! itself: the library's VM decides, fed through `Request` exactly as the engine feeds it.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use ruledeck::{FieldValue, Input, Program, RequestError, ScalarType, Signature, Step, ValueType};

/// The output columns every decision has besides its fields, in order.
pub const OUTCOME_COLUMNS: [&str; 5] = ["strategy", "experiment", "group", "bucket", "error"];

/// Rows below which another thread is not worth starting.
const MIN_ROWS_PER_THREAD: usize = 2048;

/// What an input column feeds.
#[derive(Clone, Copy)]
enum Role {
    Key(usize),
    Pass(usize),
    Tag(u32),
    Now,
}

/// How the columns of one input schema feed `scene.instance` of one program: checked once
/// per schema, then used for every row.
pub struct Plan {
    program: Arc<Program>,
    scene: String,
    instance: String,
    /// Pass-through tag names (for errors) and ids (what [`ruledeck::Request::pass_tag`]
    /// takes), by the scene's order: resolved once per schema, not looked up per row.
    passes: Vec<String>,
    pass_ids: Vec<u32>,
    /// Key names, by the scene's order (for errors).
    keys: Vec<String>,
    /// Whether the input has a `now` column.
    now_column: bool,
    /// The input schema's column names.
    column_names: Vec<String>,
    roles: Vec<(usize, Role)>,
    /// The decision fields: output column name, type.
    fields: Vec<(String, ValueType<'static>)>,
    /// The output columns: decision fields, then [`OUTCOME_COLUMNS`].
    pub outputs: Vec<Field>,
}

/// An Arrow type as pyarrow names it (`double`, `string`, `timestamp[us, tz=UTC]`), since
/// the errors are read by Python users.
pub fn py_type(t: &DataType) -> String {
    let unit = |u: &TimeUnit| match u {
        TimeUnit::Second => "s",
        TimeUnit::Millisecond => "ms",
        TimeUnit::Microsecond => "us",
        TimeUnit::Nanosecond => "ns",
    };
    match t {
        DataType::Null => "null".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int8 => "int8".into(),
        DataType::Int16 => "int16".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::UInt8 => "uint8".into(),
        DataType::UInt16 => "uint16".into(),
        DataType::UInt32 => "uint32".into(),
        DataType::UInt64 => "uint64".into(),
        DataType::Float16 => "halffloat".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 => "string".into(),
        DataType::LargeUtf8 => "large_string".into(),
        DataType::Utf8View => "string_view".into(),
        DataType::Binary => "binary".into(),
        DataType::LargeBinary => "large_binary".into(),
        DataType::Date32 => "date32[day]".into(),
        DataType::Date64 => "date64[ms]".into(),
        DataType::Timestamp(u, None) => format!("timestamp[{}]", unit(u)),
        DataType::Timestamp(u, Some(tz)) => format!("timestamp[{}, tz={tz}]", unit(u)),
        DataType::List(f) => format!("list<{}>", py_type(f.data_type())),
        DataType::LargeList(f) => format!("large_list<{}>", py_type(f.data_type())),
        DataType::Dictionary(k, v) => {
            format!("dictionary<values={}, indices={}> (cast it to string)", py_type(v), py_type(k))
        }
        other => other.to_string().to_lowercase(),
    }
}

fn string_like(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn integer(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn scalar_name(s: ScalarType) -> &'static str {
    match s {
        ScalarType::Int => "int",
        ScalarType::Float => "float",
        ScalarType::Text => "text",
        ScalarType::Bool => "bool",
        ScalarType::Time => "time",
        ScalarType::Enum => "enum",
    }
}

/// The Arrow types a column of a tag of type `s` may have, said the way an error needs it.
fn accepted(s: ScalarType) -> &'static str {
    match s {
        ScalarType::Int => "an integer type (int64 …)",
        ScalarType::Float => "a float or integer type",
        ScalarType::Text | ScalarType::Enum => "string, large_string or string_view",
        ScalarType::Bool => "bool",
        ScalarType::Time => "a timestamp, whole seconds as an integer, or RFC 3339 strings",
    }
}

fn scalar_accepts(s: ScalarType, t: &DataType) -> bool {
    match s {
        ScalarType::Int => integer(t),
        ScalarType::Float => integer(t) || matches!(t, DataType::Float32 | DataType::Float64),
        ScalarType::Text | ScalarType::Enum => string_like(t),
        ScalarType::Bool => matches!(t, DataType::Boolean),
        ScalarType::Time => integer(t) || string_like(t) || matches!(t, DataType::Timestamp(..)),
    }
}

fn type_accepts(ty: &ValueType<'_>, t: &DataType) -> bool {
    if matches!(t, DataType::Null) {
        return true;
    }
    if ty.list {
        match t {
            DataType::List(f) | DataType::LargeList(f) => {
                matches!(f.data_type(), DataType::Null) || scalar_accepts(ty.scalar, f.data_type())
            }
            _ => false,
        }
    } else {
        scalar_accepts(ty.scalar, t)
    }
}

/// A type as a deck writes it: `int`, `list<text>`, `enum(app, h5)`.
pub fn type_text(ty: &ValueType<'_>) -> String {
    let scalar = match ty.scalar {
        ScalarType::Enum => format!("enum({})", ty.members.join(", ")),
        s => scalar_name(s).to_string(),
    };
    if ty.list {
        format!("list<{scalar}>")
    } else {
        scalar
    }
}

fn output_type(ty: &ValueType<'_>) -> DataType {
    let scalar = match ty.scalar {
        ScalarType::Int => DataType::Int64,
        ScalarType::Float => DataType::Float64,
        ScalarType::Text | ScalarType::Enum => DataType::Utf8,
        ScalarType::Bool => DataType::Boolean,
        ScalarType::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    };
    if ty.list {
        DataType::List(Arc::new(Field::new("item", scalar, true)))
    } else {
        scalar
    }
}

fn static_type(ty: ValueType<'_>) -> ValueType<'static> {
    ValueType { scalar: ty.scalar, list: ty.list, members: &[] }
}

impl Plan {
    /// Checks `schema` against `scene.instance` and lays out the output. `strict`: a column
    /// the request does not take is an error (naming it); otherwise it is carried along
    /// unread (a diff reads one table with two decks whose scenes may differ).
    pub fn new(
        program: Arc<Program>,
        scene: &str,
        instance: &str,
        schema: &Schema,
        strict: bool,
    ) -> Result<Plan, String> {
        let sig: Signature<'_> = program.signature(scene, instance).map_err(|e| e.to_string())?;
        let mut roles = Vec::new();
        let mut keys_seen = vec![false; sig.keys.len()];
        for (i, field) in schema.fields().iter().enumerate() {
            let name = field.name().as_str();
            let t = field.data_type();
            if name == "now" {
                if !(matches!(t, DataType::Null) || scalar_accepts(ScalarType::Time, t)) {
                    return Err(format!(
                        "column `now` is {}; it must be {} (the evaluation time)",
                        py_type(t),
                        accepted(ScalarType::Time)
                    ));
                }
                roles.push((i, Role::Now));
            } else if let Some(k) = sig.keys.iter().position(|k| *k == name) {
                if !(string_like(t) || integer(t) || matches!(t, DataType::Null)) {
                    return Err(format!(
                        "key column `{name}` is {}; a key must be string, large_string, string_view or an integer",
                        py_type(t)
                    ));
                }
                keys_seen[k] = true;
                roles.push((i, Role::Key(k)));
            } else if let Some(p) = sig.passes.iter().position(|p| p.name == name) {
                let ty = sig.passes[p].ty;
                if !type_accepts(&ty, t) {
                    return Err(format!(
                        "column `{name}` is {}, but pass-through tag `{name}` is {}: give {}",
                        py_type(t),
                        type_text(&ty),
                        list_hint(&ty)
                    ));
                }
                roles.push((i, Role::Pass(p)));
            } else if let Some(tag) = sig.tags.iter().find(|g| g.name == name) {
                if !type_accepts(&tag.ty, t) {
                    return Err(format!(
                        "column `{name}` is {}, but tag `{name}` is {}: give {} (null = missing)",
                        py_type(t),
                        type_text(&tag.ty),
                        list_hint(&tag.ty)
                    ));
                }
                roles.push((i, Role::Tag(tag.id)));
            } else if strict {
                let candidates = sig
                    .keys
                    .iter()
                    .copied()
                    .chain(sig.passes.iter().map(|p| p.name))
                    .chain(sig.tags.iter().map(|t| t.name))
                    .chain(std::iter::once("now"));
                let hint = ruledeck::diagnostics::did_you_mean(name, candidates)
                    .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
                return Err(format!(
                    "column `{name}` is not a key, pass-through tag or tag of `{scene}.{instance}`{hint} \
                     (select only the request's columns: keys {}, tags by full name like `user.risk_score`, `now`)",
                    sig.keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if let Some(k) = keys_seen.iter().position(|seen| !seen) {
            return Err(format!(
                "missing key column `{}`: `{scene}.{instance}` needs the keys {}",
                sig.keys[k],
                sig.keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        // Decision fields by name; a field named like an input or outcome column is
        // prefixed, so no output name is ambiguous.
        let taken = |n: &str| schema.fields().iter().any(|f| f.name() == n) || OUTCOME_COLUMNS.contains(&n);
        let fields: Vec<(String, ValueType<'static>)> = sig
            .fields
            .iter()
            .map(|f| {
                let name = if taken(f.name) { format!("decision.{}", f.name) } else { f.name.to_string() };
                (name, static_type(f.ty))
            })
            .collect();
        let mut outputs: Vec<Field> = fields.iter().map(|(n, ty)| Field::new(n, output_type(ty), true)).collect();
        outputs.push(Field::new("strategy", DataType::Utf8, true));
        outputs.push(Field::new("experiment", DataType::Utf8, true));
        outputs.push(Field::new("group", DataType::Utf8, true));
        outputs.push(Field::new("bucket", DataType::Int32, true));
        outputs.push(Field::new("error", DataType::Utf8, true));
        if let Some(clash) = OUTCOME_COLUMNS.iter().find(|c| schema.fields().iter().any(|f| f.name() == *c)) {
            return Err(format!("input column `{clash}` has the name of an output column; rename it"));
        }
        let passes = sig.passes.iter().map(|p| p.name.to_string()).collect();
        let pass_ids = sig.passes.iter().map(|p| p.id).collect();
        let keys = sig.keys.iter().map(|k| k.to_string()).collect();
        let now_column = roles.iter().any(|(_, r)| matches!(r, Role::Now));
        Ok(Plan {
            program: program.clone(),
            keys,
            now_column,
            scene: scene.to_string(),
            instance: instance.to_string(),
            passes,
            pass_ids,
            column_names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            roles,
            fields,
            outputs,
        })
    }

    /// The output schema: the input columns, then the decision's.
    pub fn schema(&self, input: &Schema) -> SchemaRef {
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(self.outputs.iter().cloned());
        Arc::new(Schema::new(fields))
    }

    /// Whether this plan reads the input column `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.roles.iter().any(|&(i, _)| self.column_names[i] == name)
    }

    fn readers<'a>(&self, batch: &'a RecordBatch) -> Result<Vec<(Reader<'a>, Role)>, String> {
        self.roles.iter().map(|&(i, role)| Reader::new(batch.column(i).as_ref()).map(|r| (r, role))).collect()
    }

    /// Decides every row of `batch` on up to `threads` threads; the result holds only the
    /// output columns (see [`Plan::outputs`]). `now`: the time for rows without one.
    pub fn decide(&self, batch: &RecordBatch, now: Option<i64>, threads: usize) -> Result<Vec<Part>, String> {
        let readers = self.readers(batch)?;
        parallel(batch.num_rows(), threads, |range| {
            let mut req = self.program.request(&self.scene, &self.instance).map_err(|e| e.to_string())?;
            let mut out = Outputs::new(&self.fields, range.len());
            let mut st = RowState::default();
            for row in range {
                let error = self.decide_row(&mut req, &readers, row, now, &mut st);
                out.push(&req, error.as_deref());
            }
            out.finish()
        })
    }

    /// Runs one row's request to completion; `Some(error)` when it was refused.
    fn decide_row<'a>(
        &self,
        req: &mut ruledeck::Request<'_>,
        readers: &[(Reader<'a>, Role)],
        row: usize,
        now: Option<i64>,
        st: &mut RowState<'a>,
    ) -> Option<String> {
        // Every row gives every key, pass-through value and tag column again (a null key or
        // pass-through value refuses the row), so with a fixed `now` the last row's request
        // only needs to start over; otherwise it is cleared, and `now` is the row's own.
        match now {
            Some(t) if !self.now_column => {
                req.restart();
                req.now(t);
            }
            _ => {
                req.reset();
                if let Some(t) = now {
                    req.now(t);
                }
            }
        }
        // The first null key and pass-through value by the scene's order: refused after every
        // column is read, as the request's own check would (a bad column value comes first).
        let (mut null_key, mut null_pass) = (usize::MAX, usize::MAX);
        for (reader, role) in readers {
            match (*role, reader) {
                // The commonest columns first, read straight from their typed arrays. Every
                // tag column is supplied before the run, so the VM never suspends for it (a
                // suspension per condition cost more than the supplies it saves).
                (Role::Tag(tag), Reader::I64(a)) => req.supply(tag, a.is_valid(row).then(|| Input::Int(a.value(row)))),
                (Role::Tag(tag), Reader::F64(a)) => {
                    req.supply(tag, a.is_valid(row).then(|| Input::Float(a.value(row))))
                }
                (Role::Key(k), Reader::Utf8(a)) if a.is_valid(row) => {
                    if let Err(e) = req.key_at(k, a.value(row)) {
                        return Some(e.to_string());
                    }
                }
                (Role::Pass(p), Reader::Utf8(a)) if a.is_valid(row) => {
                    if let Err(e) = req.pass_tag(self.pass_ids[p], Input::Text(a.value(row))) {
                        return Some(e.to_string());
                    }
                }
                (Role::Key(k), _) => match reader.key(row, &mut st.key) {
                    Some(v) => {
                        if let Err(e) = req.key_at(k, v) {
                            return Some(e.to_string());
                        }
                    }
                    None => null_key = null_key.min(k),
                },
                (Role::Pass(p), _) if reader.text(row).is_some() => match reader.text(row) {
                    Some(Some(text)) => {
                        if let Err(e) = req.pass_tag(self.pass_ids[p], Input::Text(text)) {
                            return Some(e.to_string());
                        }
                    }
                    _ => null_pass = null_pass.min(p),
                },
                (Role::Pass(p), _) => match reader.get(row, &mut st.list) {
                    Ok(Some(v)) => {
                        if let Err(e) = req.pass_tag(self.pass_ids[p], v) {
                            return Some(e.to_string());
                        }
                    }
                    Ok(None) => null_pass = null_pass.min(p),
                    Err(found) => return Some(format!("invalid value for `{}`: found {found}", self.passes[p])),
                },
                (Role::Now, _) => match reader.get(row, &mut st.list) {
                    Ok(None) => {}
                    Ok(Some(Input::Time(t) | Input::Int(t))) => {
                        req.now(t);
                    }
                    Ok(Some(Input::Text(s))) => match ruledeck::time::parse_data(s) {
                        Some(t) => {
                            req.now(t);
                        }
                        None => {
                            return Some(format!(
                                "`now` must be an RFC 3339 time like \"2026-11-21T08:00:00Z\", not {s:?}"
                            ))
                        }
                    },
                    Ok(Some(_)) | Err(_) => return Some("`now` must be a time".to_string()),
                },
                (Role::Tag(tag), _) => match reader.get(row, &mut st.list) {
                    Ok(v) => req.supply(tag, v),
                    Err(found) => req.supply_wrong_type(tag, found),
                },
            }
        }
        if let Some(key) = self.keys.get(null_key) {
            return Some(RequestError::MissingKey(key.clone()).to_string());
        }
        if let Some(pass) = self.passes.get(null_pass) {
            return Some(RequestError::MissingPass(pass.clone()).to_string());
        }
        loop {
            match req.run() {
                Ok(Step::Done) => return None,
                Ok(Step::NeedTags) => {
                    // Only tags without a column are still needed: they are missing.
                    st.needed.clear();
                    st.needed.extend(req.needed().map(|n| n.tag));
                    for &tag in &st.needed {
                        req.supply(tag, None);
                    }
                }
                Err(e) => return Some(e.to_string()),
            }
        }
    }
}

/// The output columns of one slice of a batch's rows (`rows` of the input batch).
pub struct Part {
    pub rows: std::ops::Range<usize>,
    pub columns: Vec<ArrayRef>,
}

/// Splits `rows` into up to `threads` slices and runs `slice` on each in its own thread;
/// the parts come back in row order. They are not joined here: a table's result keeps
/// them as its chunks, so only a single batch's result pays for a copy (see [`join`]).
fn parallel(
    rows: usize,
    threads: usize,
    slice: impl Fn(std::ops::Range<usize>) -> Result<Vec<ArrayRef>, String> + Sync,
) -> Result<Vec<Part>, String> {
    let threads = threads.clamp(1, rows.div_ceil(MIN_ROWS_PER_THREAD).max(1));
    if threads == 1 {
        return Ok(vec![Part { rows: 0..rows, columns: slice(0..rows)? }]);
    }
    let chunk = rows.div_ceil(threads);
    let parts: Vec<Result<Part, String>> = std::thread::scope(|s| {
        let slice = &slice;
        let handles: Vec<_> = (0..rows)
            .step_by(chunk)
            .map(|start| {
                let range = start..(start + chunk).min(rows);
                s.spawn(move || slice(range.clone()).map(|columns| Part { rows: range, columns }))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a decision thread panicked".to_string())))
            .collect()
    });
    parts.into_iter().collect()
}

/// The parts' columns joined into one column each, in row order.
pub fn join(parts: Vec<Part>) -> Result<Vec<ArrayRef>, String> {
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().map(|p| p.columns).unwrap_or_default());
    }
    let columns = parts.first().map_or(0, |p| p.columns.len());
    (0..columns)
        .map(|c| {
            let pieces: Vec<&dyn Array> = parts.iter().map(|p| p.columns[c].as_ref()).collect();
            arrow_select::concat::concat(&pieces).map_err(|e| e.to_string())
        })
        .collect()
}

/// The output schema of a diff: the input columns, `old.*`, `new.*`, `changed`.
pub fn diff_schema(old: &Plan, new: &Plan, input: &Schema) -> SchemaRef {
    let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (prefix, plan) in [("old", old), ("new", new)] {
        fields.extend(plan.outputs.iter().map(|f| f.as_ref_renamed(prefix)));
    }
    fields.push(Field::new("changed", DataType::Boolean, false));
    Arc::new(Schema::new(fields))
}

trait Renamed {
    fn as_ref_renamed(&self, prefix: &str) -> Field;
}

impl Renamed for Field {
    fn as_ref_renamed(&self, prefix: &str) -> Field {
        self.clone().with_name(format!("{prefix}.{}", self.name()))
    }
}

/// Both decks' decisions for every row, and whether they differ (see [`diff_schema`]).
pub fn diff(
    old: &Plan,
    new: &Plan,
    batch: &RecordBatch,
    now: Option<i64>,
    threads: usize,
) -> Result<Vec<Part>, String> {
    let (old_readers, new_readers) = (old.readers(batch)?, new.readers(batch)?);
    parallel(batch.num_rows(), threads, |range| {
        let mut old_req = old.program.request(&old.scene, &old.instance).map_err(|e| e.to_string())?;
        let mut new_req = new.program.request(&new.scene, &new.instance).map_err(|e| e.to_string())?;
        let (mut old_out, mut new_out) =
            (Outputs::new(&old.fields, range.len()), Outputs::new(&new.fields, range.len()));
        let mut changed = BooleanBuilder::with_capacity(range.len());
        let (mut old_st, mut new_st) = (RowState::default(), RowState::default());
        for row in range {
            let old_error = old.decide_row(&mut old_req, &old_readers, row, now, &mut old_st);
            let new_error = new.decide_row(&mut new_req, &new_readers, row, now, &mut new_st);
            old_out.push(&old_req, old_error.as_deref());
            new_out.push(&new_req, new_error.as_deref());
            changed.append_value(differs(&old_req, old_error.as_deref(), &new_req, new_error.as_deref()));
        }
        let mut cols = old_out.finish()?;
        cols.extend(new_out.finish()?);
        cols.push(Arc::new(changed.finish()));
        Ok(cols)
    })
}

/// Whether two results differ in what `ruledeck diff --inputs` compares: the decision,
/// strategy, experiment, group and error. A row refused by both does not count as changed.
fn differs(
    old: &ruledeck::Request<'_>,
    old_error: Option<&str>,
    new: &ruledeck::Request<'_>,
    new_error: Option<&str>,
) -> bool {
    match (old_error, new_error) {
        (Some(_), Some(_)) => return false,
        (None, None) => {}
        _ => return true,
    }
    let (a, b) = (old.outcome(), new.outcome());
    if a.strategy() != b.strategy() || a.experiment() != b.experiment() || a.group() != b.group() {
        return true;
    }
    if a.decided() != b.decided() {
        return true;
    }
    if !a.decided() {
        return false;
    }
    let (fa, fb): (Vec<_>, Vec<_>) = (a.fields().collect(), b.fields().collect());
    fa.len() != fb.len() || fa.iter().zip(&fb).any(|((na, va), (nb, vb))| na != nb || !same_value(va, vb))
}

/// Field equality as the result objects compare: an enum member equals the same text.
fn same_value(a: &FieldValue<'_>, b: &FieldValue<'_>) -> bool {
    use FieldValue as F;
    match (a, b) {
        (F::Text(x) | F::Enum(x), F::Text(y) | F::Enum(y)) => x == y,
        (F::List(x), F::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
        _ => a == b,
    }
}

fn list_hint(ty: &ValueType<'_>) -> String {
    if ty.list {
        format!("a list of {}", accepted(ty.scalar))
    } else {
        accepted(ty.scalar).to_string()
    }
}

/// Per-thread scratch reused across rows.
#[derive(Default)]
struct RowState<'a> {
    key: String,
    list: Vec<Input<'a>>,
    needed: Vec<u32>,
}

/// Reads one column's values as request inputs. Built from a column whose type the plan
/// already accepted.
enum Reader<'a> {
    Null,
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    Bool(&'a BooleanArray),
    /// `int64` and `double` columns, downcast once per batch: no call through a closure.
    I64(&'a arrow_array::Int64Array),
    F64(&'a arrow_array::Float64Array),
    Int(Box<dyn Fn(usize) -> Option<Result<i64, &'static str>> + Send + Sync + 'a>),
    Float(Box<dyn Fn(usize) -> Option<f64> + Send + Sync + 'a>),
    Time(Box<dyn Fn(usize) -> Option<i64> + Send + Sync + 'a>),
    List {
        offsets: Vec<(usize, usize)>,
        valid: Box<dyn Fn(usize) -> bool + Send + Sync + 'a>,
        items: Box<Reader<'a>>,
    },
}

fn ints<'a, T: ArrowPrimitiveType>(a: &'a dyn Array) -> Reader<'a>
where
    T::Native: TryInto<i64>,
{
    let a = a.as_primitive::<T>();
    Reader::Int(Box::new(move |i| a.is_valid(i).then(|| a.value(i).try_into().map_err(|_| "an integer out of range"))))
}

fn times<'a, T: ArrowPrimitiveType<Native = i64>>(a: &'a dyn Array, per_second: i64) -> Reader<'a> {
    let a = a.as_primitive::<T>();
    Reader::Time(Box::new(move |i| a.is_valid(i).then(|| a.value(i).div_euclid(per_second))))
}

impl<'a> Reader<'a> {
    fn new(a: &'a dyn Array) -> Result<Reader<'a>, String> {
        Ok(match a.data_type() {
            DataType::Null => Reader::Null,
            DataType::Utf8 => Reader::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => Reader::LargeUtf8(a.as_string::<i64>()),
            DataType::Utf8View => Reader::View(a.as_string_view()),
            DataType::Boolean => Reader::Bool(a.as_boolean()),
            DataType::Int8 => ints::<Int8Type>(a),
            DataType::Int16 => ints::<Int16Type>(a),
            DataType::Int32 => ints::<Int32Type>(a),
            DataType::Int64 => Reader::I64(a.as_primitive::<Int64Type>()),
            DataType::UInt8 => ints::<UInt8Type>(a),
            DataType::UInt16 => ints::<UInt16Type>(a),
            DataType::UInt32 => ints::<UInt32Type>(a),
            DataType::UInt64 => ints::<UInt64Type>(a),
            DataType::Float32 => {
                let a = a.as_primitive::<Float32Type>();
                Reader::Float(Box::new(move |i| a.is_valid(i).then(|| f64::from(a.value(i)))))
            }
            DataType::Float64 => Reader::F64(a.as_primitive::<Float64Type>()),
            DataType::Timestamp(TimeUnit::Second, _) => times::<TimestampSecondType>(a, 1),
            DataType::Timestamp(TimeUnit::Millisecond, _) => times::<TimestampMillisecondType>(a, 1_000),
            DataType::Timestamp(TimeUnit::Microsecond, _) => times::<TimestampMicrosecondType>(a, 1_000_000),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => times::<TimestampNanosecondType>(a, 1_000_000_000),
            DataType::List(_) => {
                let l = a.as_list::<i32>();
                let offsets = l.offsets().windows(2).map(|w| (w[0] as usize, w[1] as usize)).collect();
                Reader::List {
                    offsets,
                    valid: Box::new(move |i| l.is_valid(i)),
                    items: Box::new(Reader::new(l.values().as_ref())?),
                }
            }
            DataType::LargeList(_) => {
                let l = a.as_list::<i64>();
                let offsets = l.offsets().windows(2).map(|w| (w[0] as usize, w[1] as usize)).collect();
                Reader::List {
                    offsets,
                    valid: Box::new(move |i| l.is_valid(i)),
                    items: Box::new(Reader::new(l.values().as_ref())?),
                }
            }
            other => return Err(format!("columns of type {} are not supported", py_type(other))),
        })
    }

    /// A key's value as text (integers formatted into `buf`); `None` for null.
    fn key<'s>(&'s self, row: usize, buf: &'s mut String) -> Option<&'s str> {
        match self {
            Reader::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            Reader::LargeUtf8(a) => a.is_valid(row).then(|| a.value(row)),
            Reader::View(a) => a.is_valid(row).then(|| a.value(row)),
            Reader::I64(a) => {
                let i = a.is_valid(row).then(|| a.value(row))?;
                buf.clear();
                let _ = write!(buf, "{i}");
                Some(buf.as_str())
            }
            Reader::Int(f) => match f(row)? {
                Ok(i) => {
                    buf.clear();
                    let _ = write!(buf, "{i}");
                    Some(buf.as_str())
                }
                Err(_) => None,
            },
            _ => None,
        }
    }

    /// A string column's value (`Some(None)` for null); `None` for other columns.
    #[inline]
    fn text(&self, row: usize) -> Option<Option<&'a str>> {
        match self {
            Reader::Utf8(a) => Some(a.is_valid(row).then(|| a.value(row))),
            Reader::LargeUtf8(a) => Some(a.is_valid(row).then(|| a.value(row))),
            Reader::View(a) => Some(a.is_valid(row).then(|| a.value(row))),
            _ => None,
        }
    }

    /// One scalar: `Ok(None)` for null, `Err` naming what cannot be a value.
    fn scalar(&self, row: usize) -> Result<Option<Input<'a>>, &'static str> {
        Ok(match self {
            Reader::Null => None,
            Reader::Utf8(a) => a.is_valid(row).then(|| Input::Text(a.value(row))),
            Reader::LargeUtf8(a) => a.is_valid(row).then(|| Input::Text(a.value(row))),
            Reader::View(a) => a.is_valid(row).then(|| Input::Text(a.value(row))),
            Reader::Bool(a) => a.is_valid(row).then(|| Input::Bool(a.value(row))),
            Reader::I64(a) => a.is_valid(row).then(|| Input::Int(a.value(row))),
            Reader::F64(a) => a.is_valid(row).then(|| Input::Float(a.value(row))),
            Reader::Int(f) => f(row).transpose()?.map(Input::Int),
            Reader::Float(f) => f(row).map(Input::Float),
            Reader::Time(f) => f(row).map(Input::Time),
            Reader::List { .. } => return Err("a list"),
        })
    }

    /// The row's value; list elements go into `scratch` (a null element cannot be a value).
    fn get<'s>(&'s self, row: usize, scratch: &'s mut Vec<Input<'a>>) -> Result<Option<Input<'s>>, &'static str>
    where
        'a: 's,
    {
        match self {
            Reader::List { offsets, valid, items } => {
                if !valid(row) {
                    return Ok(None);
                }
                scratch.clear();
                let (start, end) = offsets[row];
                for i in start..end {
                    scratch.push(items.scalar(i)?.ok_or("a list with a null element")?);
                }
                Ok(Some(Input::List(&scratch[..])))
            }
            other => other.scalar(row),
        }
    }
}

/// A decision field's value, owned: kept per distinct decision until the columns are built.
#[derive(Clone, Debug, PartialEq)]
enum Owned {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    Time(i64),
    List(Vec<Owned>),
}

impl From<&FieldValue<'_>> for Owned {
    fn from(v: &FieldValue<'_>) -> Owned {
        match v {
            FieldValue::Int(i) => Owned::Int(*i),
            FieldValue::Float(f) => Owned::Float(*f),
            FieldValue::Text(s) | FieldValue::Enum(s) => Owned::Text(s.to_string()),
            FieldValue::Bool(b) => Owned::Bool(*b),
            FieldValue::Time(t) => Owned::Time(*t),
            FieldValue::List(items) => Owned::List(items.iter().map(Owned::from).collect()),
        }
    }
}

/// The names of a row's outcome: strategy, experiment, group.
#[derive(Default)]
struct Labels {
    strategy: Option<String>,
    experiment: Option<String>,
    group: Option<String>,
}

/// A decider and group already met in a slice: its label, and its entry if its decision
/// is constant (a decision that reads tags gets an entry per row).
#[derive(Clone, Copy)]
struct Seen {
    label: u32,
    constant: Option<u32>,
}

/// A distinct outcome of a slice: its label and decision.
#[derive(Clone, Copy)]
struct Entry {
    label: u32,
    decision: u32,
}

/// What each row of one slice decided, recorded as one index per row while the rows run;
/// the output columns are built column by column at the end. Most decisions are made only
/// of constants ([`ruledeck::Outcome::constant`]), so a slice converts each strategy's
/// fields and names once, not once per row, and a row costs four bytes until then.
struct Outputs<'f> {
    fields: &'f [(String, ValueType<'static>)],
    /// Per row: index into `entries`.
    entry_of: Vec<u32>,
    entries: Vec<Entry>,
    labels: Vec<Labels>,
    /// Decision field values, `fields.len()` per decision.
    decisions: Vec<Owned>,
    /// How many decisions `decisions` holds (it is empty when there are no fields).
    decision_count: u32,
    /// The entry of rows without a decision (no names, null fields), made when first
    /// needed: a column whose distinct values have no null gathers faster.
    undecided: Option<u32>,
    /// By decider (0 undecided, 1 default, 2 + strategy index) and group (0 none, 1 + group).
    seen: Vec<Vec<Option<Seen>>>,
    /// Per row: the A/B bucket, [`NO_BUCKET`] for none; empty until a row has a bucket.
    buckets: Vec<u32>,
    /// Refused rows (row within the slice, why): almost always none, so the `error` column
    /// is built at the end instead of appending a null on every row.
    errors: Vec<(usize, String)>,
}

impl<'f> Outputs<'f> {
    fn new(fields: &'f [(String, ValueType<'static>)], rows: usize) -> Outputs<'f> {
        Outputs {
            fields,
            entry_of: Vec::with_capacity(rows),
            entries: Vec::new(),
            labels: Vec::new(),
            decisions: Vec::new(),
            decision_count: 0,
            undecided: None,
            seen: Vec::new(),
            buckets: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn push(&mut self, req: &ruledeck::Request<'_>, error: Option<&str>) {
        if let Some(e) = error {
            self.errors.push((self.entry_of.len(), e.to_string()));
            self.push_undecided();
            return;
        }
        let outcome = req.outcome();
        let decider = match outcome.decider() {
            None => return self.push_undecided(),
            Some(ruledeck::Decider::Default) => 1,
            Some(ruledeck::Decider::Strategy(i)) => i as usize + 2,
        };
        if let Some(bucket) = outcome.bucket() {
            if self.buckets.is_empty() {
                self.buckets.resize(self.entry_of.len(), NO_BUCKET);
            }
            self.buckets.push(bucket);
        } else if !self.buckets.is_empty() {
            self.buckets.push(NO_BUCKET);
        }
        let group = outcome.group_index().map_or(0, |g| g as usize + 1);
        let known = self.seen.get(decider).and_then(|by_group| by_group.get(group)).copied().flatten();
        let Seen { label, constant } = match known {
            Some(seen) => seen,
            None => {
                self.labels.push(Labels {
                    strategy: outcome.strategy().map(str::to_string),
                    experiment: outcome.experiment().map(str::to_string),
                    group: outcome.group().map(str::to_string),
                });
                let label = (self.labels.len() - 1) as u32;
                let constant = outcome.constant().then(|| {
                    let decision = self.add_decision(&outcome);
                    self.add_entry(label, decision)
                });
                if self.seen.len() <= decider {
                    self.seen.resize_with(decider + 1, Vec::new);
                }
                if self.seen[decider].len() <= group {
                    self.seen[decider].resize(group + 1, None);
                }
                let seen = Seen { label, constant };
                self.seen[decider][group] = Some(seen);
                seen
            }
        };
        let entry = match constant {
            Some(entry) => entry,
            None => {
                let decision = self.add_decision(&outcome);
                self.add_entry(label, decision)
            }
        };
        self.entry_of.push(entry);
    }

    #[inline(never)]
    fn push_undecided(&mut self) {
        let entry = match self.undecided {
            Some(entry) => entry,
            None => {
                self.labels.push(Labels::default());
                self.decisions.extend(std::iter::repeat_n(Owned::Null, self.fields.len()));
                self.decision_count += 1;
                let entry = self.add_entry((self.labels.len() - 1) as u32, self.decision_count - 1);
                self.undecided = Some(entry);
                entry
            }
        };
        if !self.buckets.is_empty() {
            self.buckets.push(NO_BUCKET);
        }
        self.entry_of.push(entry);
    }

    fn add_entry(&mut self, label: u32, decision: u32) -> u32 {
        self.entries.push(Entry { label, decision });
        (self.entries.len() - 1) as u32
    }

    /// Converts the outcome's fields into a new decision; returns its index.
    fn add_decision(&mut self, outcome: &ruledeck::Outcome<'_>) -> u32 {
        let before = self.decisions.len();
        self.decisions.extend(outcome.fields().map(|(_, v)| Owned::from(&v)));
        // A decision always has every field; keep the stride even if it had not.
        self.decisions.resize(before + self.fields.len(), Owned::Null);
        self.decision_count += 1;
        self.decision_count - 1
    }

    /// The output columns: each is built once per entry (distinct outcome), then gathered
    /// by the rows' entries (Arrow's `take`).
    fn finish(self) -> Result<Vec<ArrayRef>, String> {
        let n = self.fields.len();
        let rows = self.entry_of.len();
        let entry_of = UInt32Array::from(self.entry_of);
        let gather = |values: &dyn Array| arrow_select::take::take(values, &entry_of, None).map_err(|e| e.to_string());
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(n + OUTCOME_COLUMNS.len());
        for (f, (_, ty)) in self.fields.iter().enumerate() {
            let mut b = FieldBuilder::new(ty, self.entries.len());
            for e in &self.entries {
                b.push(&self.decisions[e.decision as usize * n + f]);
            }
            cols.push(gather(b.finish().as_ref())?);
        }
        for name in [|l: &Labels| l.strategy.clone(), |l: &Labels| l.experiment.clone(), |l: &Labels| l.group.clone()] {
            let distinct = StringArray::from_iter(self.entries.iter().map(|e| name(&self.labels[e.label as usize])));
            cols.push(if distinct.null_count() == distinct.len() {
                arrow_array::new_null_array(&DataType::Utf8, rows)
            } else {
                gather(&distinct)?
            });
        }
        cols.push(if self.buckets.is_empty() {
            arrow_array::new_null_array(&DataType::Int32, rows)
        } else {
            Arc::new(Int32Array::from_iter(self.buckets.iter().map(|&b| (b != NO_BUCKET).then_some(b as i32))))
        });
        let error: ArrayRef = if self.errors.is_empty() {
            arrow_array::new_null_array(&DataType::Utf8, rows)
        } else {
            let mut b = StringBuilder::with_capacity(rows, 0);
            let mut next = self.errors.iter().peekable();
            for row in 0..rows {
                match next.next_if(|(r, _)| *r == row) {
                    Some((_, e)) => b.append_value(e),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        };
        cols.push(error);
        Ok(cols)
    }
}

/// What [`Outputs::buckets`] holds for a row without a bucket (buckets are below 10,000).
const NO_BUCKET: u32 = u32::MAX;

/// Builds one output column of decision fields.
enum FieldBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
    IntList(ListBuilder<Int64Builder>),
    FloatList(ListBuilder<Float64Builder>),
    TextList(ListBuilder<StringBuilder>),
    BoolList(ListBuilder<BooleanBuilder>),
    TimeList(ListBuilder<TimestampMicrosecondBuilder>),
}

fn micros(t: i64) -> Option<i64> {
    t.checked_mul(1_000_000)
}

impl FieldBuilder {
    fn new(ty: &ValueType<'_>, rows: usize) -> FieldBuilder {
        let ts = || TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
        match (ty.scalar, ty.list) {
            (ScalarType::Int, false) => FieldBuilder::Int(Int64Builder::with_capacity(rows)),
            (ScalarType::Float, false) => FieldBuilder::Float(Float64Builder::with_capacity(rows)),
            (ScalarType::Text | ScalarType::Enum, false) => {
                FieldBuilder::Text(StringBuilder::with_capacity(rows, rows * 8))
            }
            (ScalarType::Bool, false) => FieldBuilder::Bool(BooleanBuilder::with_capacity(rows)),
            (ScalarType::Time, false) => FieldBuilder::Time(ts()),
            (ScalarType::Int, true) => FieldBuilder::IntList(ListBuilder::new(Int64Builder::new())),
            (ScalarType::Float, true) => FieldBuilder::FloatList(ListBuilder::new(Float64Builder::new())),
            (ScalarType::Text | ScalarType::Enum, true) => {
                FieldBuilder::TextList(ListBuilder::new(StringBuilder::new()))
            }
            (ScalarType::Bool, true) => FieldBuilder::BoolList(ListBuilder::new(BooleanBuilder::new())),
            (ScalarType::Time, true) => {
                FieldBuilder::TimeList(ListBuilder::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")))
            }
        }
    }

    /// Appends `v`; a value of another kind than the column's (never made by a checked
    /// deck) is null.
    fn push(&mut self, v: &Owned) {
        use Owned as O;
        match (self, v) {
            (FieldBuilder::Int(b), O::Int(i)) => b.append_value(*i),
            (FieldBuilder::Float(b), O::Float(f)) => b.append_value(*f),
            (FieldBuilder::Float(b), O::Int(i)) => b.append_value(*i as f64),
            (FieldBuilder::Text(b), O::Text(s)) => b.append_value(s),
            (FieldBuilder::Bool(b), O::Bool(x)) => b.append_value(*x),
            (FieldBuilder::Time(b), O::Time(t)) => b.append_option(micros(*t)),
            (FieldBuilder::IntList(b), O::List(items)) => {
                for item in items {
                    b.values().append_option(if let O::Int(i) = item { Some(*i) } else { None });
                }
                b.append(true);
            }
            (FieldBuilder::FloatList(b), O::List(items)) => {
                for item in items {
                    b.values().append_option(match item {
                        O::Float(f) => Some(*f),
                        O::Int(i) => Some(*i as f64),
                        _ => None,
                    });
                }
                b.append(true);
            }
            (FieldBuilder::TextList(b), O::List(items)) => {
                for item in items {
                    b.values().append_option(if let O::Text(s) = item { Some(s.as_str()) } else { None });
                }
                b.append(true);
            }
            (FieldBuilder::BoolList(b), O::List(items)) => {
                for item in items {
                    b.values().append_option(if let O::Bool(x) = item { Some(*x) } else { None });
                }
                b.append(true);
            }
            (FieldBuilder::TimeList(b), O::List(items)) => {
                for item in items {
                    b.values().append_option(if let O::Time(t) = item { micros(*t) } else { None });
                }
                b.append(true);
            }
            (b, _) => b.push_null(),
        }
    }

    fn push_null(&mut self) {
        match self {
            FieldBuilder::Int(b) => b.append_null(),
            FieldBuilder::Float(b) => b.append_null(),
            FieldBuilder::Text(b) => b.append_null(),
            FieldBuilder::Bool(b) => b.append_null(),
            FieldBuilder::Time(b) => b.append_null(),
            FieldBuilder::IntList(b) => b.append(false),
            FieldBuilder::FloatList(b) => b.append(false),
            FieldBuilder::TextList(b) => b.append(false),
            FieldBuilder::BoolList(b) => b.append(false),
            FieldBuilder::TimeList(b) => b.append(false),
        }
    }

    fn finish(mut self) -> ArrayRef {
        match &mut self {
            FieldBuilder::Int(b) => Arc::new(b.finish()),
            FieldBuilder::Float(b) => Arc::new(b.finish()),
            FieldBuilder::Text(b) => Arc::new(b.finish()),
            FieldBuilder::Bool(b) => Arc::new(b.finish()),
            FieldBuilder::Time(b) => Arc::new(b.finish()),
            FieldBuilder::IntList(b) => Arc::new(b.finish()),
            FieldBuilder::FloatList(b) => Arc::new(b.finish()),
            FieldBuilder::TextList(b) => Arc::new(b.finish()),
            FieldBuilder::BoolList(b) => Arc::new(b.finish()),
            FieldBuilder::TimeList(b) => Arc::new(b.finish()),
        }
    }
}

/// Joins the input batch and the output columns into the output batch.
pub fn with_outputs(batch: &RecordBatch, schema: SchemaRef, outputs: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.extend(outputs);
    RecordBatch::try_new(schema, columns)
}

/// One output batch per part: the part's rows of the input batch (a zero-copy slice) and
/// its output columns.
pub fn part_batches(batch: &RecordBatch, schema: SchemaRef, parts: Vec<Part>) -> Result<Vec<RecordBatch>, ArrowError> {
    parts
        .into_iter()
        .map(|p| with_outputs(&batch.slice(p.rows.start, p.rows.len()), schema.clone(), p.columns))
        .collect()
}
