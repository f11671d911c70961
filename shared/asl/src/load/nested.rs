//! Parallel and Map states, whose branches and item processor are scopes of their own.

use super::fields::Fields;
use super::states::result_handling;
use super::{Loader, common, scope};
use crate::error::LoadError;
use crate::model::{Concurrency, MapState, ParallelState};

const DISTRIBUTED: &str = "distributed Map is not supported locally (only inline Map runs)";

pub(crate) fn parallel(
    loader: &mut Loader,
    fields: &Fields<'_>,
    path: &str,
) -> Result<ParallelState, LoadError> {
    fields.allow_only(
        &[
            "Type",
            "Comment",
            "QueryLanguage",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "Branches",
        ],
        "a Parallel state",
    )?;
    let items = fields
        .array("Branches")?
        .ok_or_else(|| fields.error("Branches", "is required"))?;
    if items.is_empty() {
        return Err(fields.error("Branches", "must hold at least one branch"));
    }
    let mut branches = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        let branch = Fields::of(fields.state(), &format!("Branches[{position}]"), item)?;
        branch.allow_only(
            &["StartAt", "States", "Comment", "QueryLanguage"],
            "a Parallel branch",
        )?;
        check_query_language(&branch)?;
        branches.push(scope::scope(
            loader,
            &branch,
            &format!("{path}/branch {position}/"),
        )?);
    }
    Ok(ParallelState {
        filters: common::filters(fields)?,
        parameters: common::template(fields, "Parameters")?,
        branches,
        results: result_handling(fields)?,
        transition: common::transition(fields)?,
    })
}

pub(crate) fn map(
    loader: &mut Loader,
    fields: &Fields<'_>,
    path: &str,
) -> Result<MapState, LoadError> {
    fields.allow_only(
        &[
            "Type",
            "Comment",
            "QueryLanguage",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "ItemProcessor",
            "Iterator",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        "a Map state",
    )?;
    fields.exclusive("ItemProcessor", "Iterator")?;
    fields.exclusive("ItemSelector", "Parameters")?;
    fields.exclusive("MaxConcurrency", "MaxConcurrencyPath")?;
    let processor_field = if fields.has("Iterator") {
        "Iterator"
    } else {
        "ItemProcessor"
    };
    let Some(processor_value) = fields.get(processor_field) else {
        return Err(fields.error("ItemProcessor", "is required"));
    };
    let processor = Fields::of(fields.state(), processor_field, processor_value)?;
    if processor_field == "ItemProcessor" {
        processor.allow_only(
            &[
                "ProcessorConfig",
                "StartAt",
                "States",
                "Comment",
                "QueryLanguage",
            ],
            "an ItemProcessor",
        )?;
        processor_config(&processor)?;
    } else {
        processor.allow_only(
            &["StartAt", "States", "Comment", "QueryLanguage"],
            "an Iterator",
        )?;
    }
    check_query_language(&processor)?;
    let item_selector_field = if fields.has("Parameters") {
        "Parameters"
    } else {
        "ItemSelector"
    };
    let concurrency = match common::reference_path(fields, "MaxConcurrencyPath")? {
        Some(path) => Concurrency::FromPath(path),
        None => Concurrency::Fixed(
            fields
                .integer("MaxConcurrency", 0, u64::from(u32::MAX))?
                .unwrap_or(0),
        ),
    };
    Ok(MapState {
        filters: common::filters(fields)?,
        items_path: common::reference_path(fields, "ItemsPath")?,
        item_selector: common::template(fields, item_selector_field)?,
        processor: scope::scope(loader, &processor, &format!("{path}/processor/"))?,
        concurrency,
        results: result_handling(fields)?,
        transition: common::transition(fields)?,
    })
}

fn processor_config(processor: &Fields<'_>) -> Result<(), LoadError> {
    let Some(value) = processor.get("ProcessorConfig") else {
        return Ok(());
    };
    let config = Fields::of(processor.state(), &processor.name("ProcessorConfig"), value)?;
    match config.string("Mode")? {
        None | Some("INLINE") => {}
        Some("DISTRIBUTED") => return Err(config.error("Mode", DISTRIBUTED)),
        Some(other) => {
            return Err(config.error(
                "Mode",
                format!("must be INLINE or DISTRIBUTED, not '{other}'"),
            ));
        }
    }
    if config.has("ExecutionType") {
        return Err(config.error("ExecutionType", DISTRIBUTED));
    }
    config.allow_only(&["Mode"], "a ProcessorConfig")
}

fn check_query_language(fields: &Fields<'_>) -> Result<(), LoadError> {
    match fields.string("QueryLanguage")? {
        None | Some("JSONPath") => Ok(()),
        Some(_) => Err(fields.error("QueryLanguage", "only JSONPath is supported locally")),
    }
}
