"""`mutoscope usage`, `users set-plan`, `models deprecate`, `service …`: plans and lifecycle for operators."""

from datetime import datetime, timezone
from typing import Annotated, Optional

import typer
from rich.table import Table

from mutoscope.cli.common import DataDir, console, fail, open_sessions, settings_for, storage_or_fail
from mutoscope.cli.listing import amount, when


def _ts(value: str) -> int:
    """A date (YYYY-MM-DD, UTC midnight), an ISO datetime, or a Unix timestamp."""
    if value.lstrip("-").isdigit():
        return int(value)
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def register(app: typer.Typer, users_app: typer.Typer, models_app: typer.Typer) -> None:
    service_app = typer.Typer(help="Schedule and inspect the end of the whole service.")
    app.add_typer(service_app, name="service")

    @app.command()
    def usage(user: str = "owner", data_dir: DataDir = None) -> None:
        """Show a user's plan usage for this month: spent, reserved, left."""
        from mutoscope.accounts import quota
        from mutoscope.accounts.plans import load_plans
        from mutoscope.accounts.service import get_user
        from mutoscope.errors import MutoscopeError

        settings = settings_for(data_dir)
        plans = load_plans(settings.plans_file)
        with open_sessions(settings)() as s:
            try:
                u = get_user(s, user)
            except MutoscopeError as e:
                fail(e.message)
            info = quota.usage(s, plans[u.plan or settings.default_plan], u.id)
        table = Table("plan", "period", "unit", "budget", "spent", "reserved", "left", "active jobs")
        table.add_row(info["plan"], info["period"], info["unit"], amount(info["budget"]), amount(info["spent"]),
                      amount(info["reserved"]), amount(info["left"]),
                      f"{info['active_jobs']}/{amount(info['concurrent_jobs'])}")
        console.print(table)

    @users_app.command("set-plan")
    def users_set_plan(user: str, plan: str, data_dir: DataDir = None) -> None:
        """Put a user on a plan from the plans file."""
        from mutoscope.accounts.plans import load_plans
        from mutoscope.accounts.service import get_user
        from mutoscope.errors import MutoscopeError

        settings = settings_for(data_dir)
        if plan not in load_plans(settings.plans_file):
            fail(f"unknown plan {plan!r}")
        with open_sessions(settings)() as s:
            try:
                u = get_user(s, user)
            except MutoscopeError as e:
                fail(e.message)
            u.plan = plan
            s.commit()
        console.print(f"{user} is on the {plan} plan")

    @models_app.command("deprecate")
    def models_deprecate(model: str,
                         shutdown: Annotated[str, typer.Option(help="Shutdown date (YYYY-MM-DD or Unix time).")],
                         replacement: Optional[str] = None,
                         notice: Annotated[Optional[str], typer.Option(help="Deprecation date; default now.")] = None,
                         data_dir: DataDir = None) -> None:
        """Deprecate a model or alias: Deprecation/Sunset headers now, 410 after the shutdown date."""
        from mutoscope.errors import MutoscopeError
        from mutoscope.lifecycle import service as lifecycle

        with open_sessions(settings_for(data_dir))() as s:
            try:
                row = lifecycle.deprecate_model(s, model, shutdown_at=_ts(shutdown),
                                                deprecated_at=_ts(notice) if notice else None,
                                                replacement=replacement)
            except MutoscopeError as e:
                fail(e.message)
        console.print(f"{model}: deprecated from {lifecycle.http_date(row.deprecated_at)}, shut down on "
                      f"{lifecycle.http_date(row.shutdown_at)}" + (f", replaced by {replacement}" if replacement else ""))

    @service_app.command("status")
    def service_status(data_dir: DataDir = None) -> None:
        """Show the service's phase and sunset schedule."""
        from mutoscope.lifecycle import service as lifecycle

        with open_sessions(settings_for(data_dir))() as s:
            info = lifecycle.current_phase(s).as_dict()
        for k, v in info.items():
            if k.endswith("_at"):
                v = when(v, "not scheduled")
            console.print(f"{k}: {'-' if v is None or v == '' else v}", markup=False, highlight=False)

    @service_app.command("sunset")
    def service_sunset(notice: str, no_new_generations: str, export_only: str, deletion: str,
                       message: str = "", data_dir: DataDir = None) -> None:
        """Schedule the end of the service: notice, no new generations, export only, deletion (dates in order)."""
        from mutoscope.errors import MutoscopeError
        from mutoscope.lifecycle import service as lifecycle

        with open_sessions(settings_for(data_dir))() as s:
            try:
                lifecycle.schedule_sunset(s, notice_at=_ts(notice), no_new_generations_at=_ts(no_new_generations),
                                          export_only_at=_ts(export_only), deletion_at=_ts(deletion),
                                          message=message)
            except MutoscopeError as e:
                fail(e.message)
        console.print("Sunset scheduled.")

    @service_app.command("purge")
    def service_purge(dry_run: bool = False, data_dir: DataDir = None) -> None:
        """In the deletion phase: delete the data of users who were offered an export for the whole window."""
        from mutoscope.lifecycle import service as lifecycle

        settings = settings_for(data_dir)
        with open_sessions(settings)() as s:
            users = lifecycle.deletable_users(s)
            console.print(f"{len(users)} users may be deleted" + (" (dry run)" if dry_run else ""))
            if not dry_run:
                storage = storage_or_fail(settings)
                for uid in users:
                    n = lifecycle.purge_user_data(s, storage, uid)
                    console.print(f"  {uid}: {n} videos deleted")
