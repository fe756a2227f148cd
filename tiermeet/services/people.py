"""People are reference data from the config; the database keeps a copy for joins and history.

Removing someone from the config deactivates them (their past decisions still name them).
"""

from sqlalchemy import select

from tiermeet.services.context import Context
from tiermeet.services.lookup import find_person
from tiermeet.store.models import Person

FIELDS = ("name", "badge", "role", "scope", "active")


class PeopleService:
    """Keeps the people table in step with the config, and finds people by id or badge."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def find(self, who: str) -> Person:
        """The active person with this id or badge, or a DomainError."""
        with self.ctx.read() as session:
            return find_person(session, who)

    def all_active(self) -> list[Person]:
        """Everyone who can sign in, by name."""
        with self.ctx.read() as session:
            return list(session.scalars(select(Person).where(Person.active).order_by(Person.name)))

    def _changes(self, session) -> tuple[dict, dict]:
        """(stored rows, rows to write) to make the people table match the config."""
        wanted = {p.id: {"name": p.name, "badge": p.badge, "role": p.role.value, "scope": p.scope, "active": True}
                  for p in self.ctx.config.people}
        stored = {p.id: {f: getattr(p, f) for f in FIELDS} for p in session.scalars(select(Person))}
        changes = {pid: row for pid, row in wanted.items() if stored.get(pid) != row}
        changes |= {pid: {**row, "active": False, "badge": f"~{pid}"}
                    for pid, row in stored.items() if pid not in wanted and row["active"]}
        return stored, changes

    def sync_from_config(self) -> int:
        """Insert, update or deactivate people to match the config; returns how many changed."""
        with self.ctx.read() as session:
            if not self._changes(session)[1]:
                return 0  # the usual case: nothing to write, no write lock taken
        with self.ctx.tx("system:config") as tx:
            # Again under the write lock: another kiosk may have synced meanwhile.
            stored, changes = self._changes(tx.session)
            if not changes:
                return 0
            # Badges may move between people: free every changed badge before reassigning.
            for pid in changes:
                if pid in stored:
                    tx.session.get(Person, pid).badge = f"~{pid}"
            tx.session.flush()
            for pid, row in changes.items():
                person = tx.session.get(Person, pid)
                if person is None:
                    tx.session.add(Person(id=pid, **row))
                else:
                    for name, value in row.items():
                        setattr(person, name, value)
                tx.audit_local(entity="person", entity_id=pid, op="config", before=stored.get(pid), after=row)
            return len(changes)
