"""Found by the project's `app.autodiscover_tasks()` (it looks for each installed app's
`tasks` module): refresher's refresh tasks, registered with the project's app."""

from refresher.tasks import refresh, refresh_many

__all__ = ["refresh", "refresh_many"]
