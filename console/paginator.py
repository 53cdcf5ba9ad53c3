"""A paginator for tables of millions of rows: it counts at most CAP rows, never the table."""

from functools import cached_property

from django.core.paginator import Paginator

CAP = 10_000


class CappedCountPaginator(Paginator):
    """`count` is the number of matching rows up to CAP + 1, read with
    `SELECT COUNT(*) FROM (… LIMIT CAP + 1)`: a few milliseconds at most, however many rows
    match. Past CAP the list says "more than 10,000" and the pages stop there: narrow it
    with a filter."""

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > CAP
