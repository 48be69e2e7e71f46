//! `taskdaemon new-plan` and `taskdaemon plan list|show|approve|cancel|
//! resume|message|answer|dead-letters`: parsed here, done by the service's
//! pipeline API, formatted here.

use taskdaemon_core::pipeline::{MessageKind, MessageRecord, PipelineCost};
use taskdaemon_core::time::{format_age, now_millis};
use taskdaemon_service::{HumanMessage, LoopCost, NewPlanInput, PlanShow};
use taskdaemon_workspace::Workspace;

use super::{agent, service};
use crate::args::{
    MessageKindArg, NewPlanArgs, PlanAnswerArgs, PlanCancelArgs, PlanCommand, PlanDeadLettersArgs,
    PlanIdArgs, PlanListArgs, PlanMessageArgs, PlanShowArgs,
};
use crate::error::UsageError;
use crate::output::{print_json, table};

pub fn new_plan(workspace: &Workspace, args: NewPlanArgs) -> anyhow::Result<u8> {
    let goal = match (&args.goal, &args.file) {
        (_, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| UsageError(format!("cannot read {}: {e}", file.display())))?,
        (Some(goal), None) => goal.clone(),
        (None, None) => {
            return Err(UsageError("give a GOAL or --file FILE".to_owned()).into());
        }
    };
    let agent = agent(&args.agent)?;
    let plan = service(workspace)?.new_plan(
        &agent,
        NewPlanInput {
            goal,
            target: args.target,
            auto_approve: args.auto_approve,
        },
    )?;
    if args.json {
        print_json(&plan)?;
        return Ok(0);
    }
    let next = if args.auto_approve {
        "the daemon starts it"
    } else {
        "approve it with `taskdaemon plan approve` when it is planned"
    };
    eprintln!(
        "created {} on {} at {} ({}); {next}",
        plan.id,
        plan.target_branch,
        short(&plan.base_commit),
        plan.status
    );
    println!("{}", plan.id);
    Ok(0)
}

pub fn run(workspace: &Workspace, command: PlanCommand) -> anyhow::Result<u8> {
    match command {
        PlanCommand::List(args) => list(workspace, args),
        PlanCommand::Show(args) => show(workspace, args),
        PlanCommand::Approve(args) => approve(workspace, args),
        PlanCommand::Cancel(args) => cancel(workspace, args),
        PlanCommand::Resume(args) => resume(workspace, args),
        PlanCommand::Message(args) => message(workspace, args),
        PlanCommand::Answer(args) => answer(workspace, args),
        PlanCommand::DeadLetters(args) => dead_letters(workspace, args),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn cost_cell(cost: &PipelineCost) -> String {
    format!(
        "${:.4} ({} in / {} out)",
        cost.cost_usd, cost.input_tokens, cost.output_tokens
    )
}

fn list(workspace: &Workspace, args: PlanListArgs) -> anyhow::Result<u8> {
    let service = service(workspace)?;
    let plans = service.plans(!args.all)?;
    if args.json {
        print_json(&plans)?;
        return Ok(0);
    }
    let scheduler = service.scheduler_state();
    if let Some(reason) = &scheduler.held {
        println!("no new spec starts now: {reason}");
    }
    if plans.is_empty() {
        println!(
            "{}",
            if args.all {
                "no plans (create one with `taskdaemon new-plan \"GOAL\"`)"
            } else {
                "no unfinished plans (plan list --all shows ended ones)"
            }
        );
        return Ok(0);
    }
    let now = now_millis();
    let rows: Vec<Vec<String>> = plans
        .iter()
        .map(|p| {
            vec![
                p.plan.id.clone(),
                p.plan.status.to_string(),
                format!("{}/{}", p.specs_succeeded, p.specs_total),
                format!("${:.4}", p.plan.cost.cost_usd),
                format_age(now - p.plan.created_at),
                p.plan.display_title().to_owned(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["ID", "STATUS", "SPECS", "COST", "AGE", "TITLE"], &rows)
    );
    Ok(0)
}

fn show(workspace: &Workspace, args: PlanShowArgs) -> anyhow::Result<u8> {
    let tree = service(workspace)?.plan_show(&args.id)?;
    if args.json {
        print_json(&tree)?;
    } else {
        print!("{}", tree_text(&tree));
    }
    Ok(0)
}

fn loop_lines(out: &mut String, indent: &str, loops: &[LoopCost]) {
    for l in loops {
        out.push_str(&format!(
            "{indent}loop {}: {}, {} iterations, ${:.4} ({} in / {} out)\n",
            l.id, l.status, l.iterations, l.cost_usd, l.input_tokens, l.output_tokens
        ));
    }
}

/// The plan, then each spec with its phases and loops, indented.
fn tree_text(tree: &PlanShow) -> String {
    let plan = &tree.plan;
    let (done, total) = (tree.specs_succeeded, tree.specs_total);
    let mut out = format!(
        "{} {}: {}\n  target {} from {}, {done}/{total} specs done, cost {}\n",
        plan.id,
        plan.display_title(),
        plan.status,
        plan.target_branch,
        short(&plan.base_commit),
        cost_cell(&plan.cost)
    );
    if let Some(note) = &plan.note {
        out.push_str(&format!("  note: {note}\n"));
    }
    if let Some(summary) = &plan.summary {
        out.push_str(&format!("  summary: {summary}\n"));
    }
    if plan.body.is_none() {
        out.push_str("  (not planned yet: the plan loop has not submitted a plan)\n");
    }
    loop_lines(&mut out, "  ", &tree.loops);
    for spec in &tree.specs {
        let s = &spec.spec;
        let after = if s.depends_on.is_empty() {
            String::new()
        } else {
            format!(", after {}", s.depends_on.join(", "))
        };
        out.push_str(&format!(
            "- {} {}: {} (priority {}{after}), cost {}\n",
            s.id,
            s.title,
            s.status,
            s.priority,
            cost_cell(&s.cost)
        ));
        if let Some(note) = &s.note {
            out.push_str(&format!("    note: {note}\n"));
        }
        loop_lines(&mut out, "    ", &spec.loops);
        for phase in &spec.phases {
            let phase_loops = &phase.loops;
            let phase = &phase.phase;
            out.push_str(&format!(
                "    {}. {} {}: {}, validate `{}`, cost {}\n",
                phase.number,
                phase.name,
                phase.title,
                phase.status,
                phase.validation,
                cost_cell(&phase.cost)
            ));
            loop_lines(&mut out, "       ", phase_loops);
        }
    }
    out
}

fn approve(workspace: &Workspace, args: PlanIdArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let plan = service(workspace)?.approve_plan(&agent, &args.id)?;
    if args.json {
        print_json(&plan)?;
    } else {
        println!("{} approved: {}", plan.id, plan.status);
    }
    Ok(0)
}

fn cancel(workspace: &Workspace, args: PlanCancelArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let tree = service(workspace)?.cancel_plan(&agent, &args.id, args.reason.as_deref())?;
    if args.json {
        print_json(&tree)?;
    } else {
        println!("{} cancelled", tree.plan.id);
    }
    Ok(0)
}

fn resume(workspace: &Workspace, args: PlanIdArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let tree = service(workspace)?.resume_plan(&agent, &args.id)?;
    if args.json {
        print_json(&tree)?;
    } else {
        println!("{} resumed: {}", tree.plan.id, tree.plan.status);
    }
    Ok(0)
}

fn kind(arg: MessageKindArg) -> MessageKind {
    match arg {
        MessageKindArg::Alert => MessageKind::Alert,
        MessageKindArg::Share => MessageKind::Share,
        MessageKindArg::Query => MessageKind::Query,
        MessageKindArg::Stop => MessageKind::Stop,
    }
}

fn message(workspace: &Workspace, args: PlanMessageArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let sent = service(workspace)?.plan_message(
        &agent,
        &args.id,
        HumanMessage {
            to: args.to,
            kind: kind(args.kind),
            body: args.text,
        },
    )?;
    if args.json {
        print_json(&sent)?;
    } else {
        eprintln!(
            "{} {} sent to {} of {}",
            sent.id, sent.kind, sent.to, sent.plan
        );
        println!("{}", sent.id);
    }
    Ok(0)
}

fn answer(workspace: &Workspace, args: PlanAnswerArgs) -> anyhow::Result<u8> {
    let agent = agent(&args.agent)?;
    let answered = service(workspace)?.answer_message(&agent, &args.message, &args.text)?;
    if args.json {
        print_json(&answered)?;
    } else {
        println!(
            "{} answered; {} of {} gets it with its next iteration",
            answered.id, answered.from, answered.plan
        );
    }
    Ok(0)
}

fn dead_letters(workspace: &Workspace, args: PlanDeadLettersArgs) -> anyhow::Result<u8> {
    let letters: Vec<MessageRecord> = service(workspace)?.dead_letters(args.id.as_deref())?;
    if args.json {
        print_json(&letters)?;
        return Ok(0);
    }
    if letters.is_empty() {
        println!("no dead letters");
        return Ok(0);
    }
    let now = now_millis();
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.plan.clone(),
                m.kind.to_string(),
                format!("{} -> {}", m.from, m.to),
                format_age(now - m.updated_at),
                m.reason.clone().unwrap_or_default(),
                m.body.lines().next().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ID", "PLAN", "KIND", "ROUTE", "AGE", "REASON", "MESSAGE"],
            &rows
        )
    );
    Ok(0)
}
