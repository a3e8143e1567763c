"""The App's side of the basket (``app.tui.dialogs.basket``): ``b`` shows it, and opening another
dataset asks before it empties a basket that holds ids."""

from __future__ import annotations

from typing import Callable

from app.tui.dialogs.basket import Basket, BasketScreen, DiscardBasketScreen
from app.tui.dialogs.ids import ExportIdsScreen
from app.tui.dialogs.queue import QueueScreen


class BasketMixin:
    """Mixed into the App: ``self.basket`` and what acts on it."""

    basket: Basket

    def action_basket(self) -> None:
        basket = self.basket.for_repo(getattr(self.current_settings, "repo", None) or self.basket.repo)
        self.push_screen(BasketScreen(basket), self._basket_chosen)

    def _basket_chosen(self, choice: str | None) -> None:
        basket = self.basket
        if choice == "queue" and self.current_pool is not None:
            self.push_screen(QueueScreen(self.current_pool, self.current_settings or self.settings,
                                         str(basket.ranges())))
        elif choice == "export":
            self.push_screen(ExportIdsScreen({"marked": basket.ranges()}, folder=self.last_destination))
        elif choice == "clear":
            basket.ids.clear()
            self.basket_changed()

    def basket_changed(self) -> None:
        """Every screen that shows marks says the basket's count again."""
        for screen in self.screen_stack:
            if hasattr(screen, "marked"):  # the archives table and an archive's files
                screen.sub_title = self.basket.label()
                if hasattr(screen, "restyle_all"):
                    screen.restyle_all()

    def confirm_basket_change(self, repo: str | None, why: str, then: Callable[[], None]) -> None:
        """Run ``then`` now when the basket holds nothing of another repo; else ask first."""
        if not self.basket.ids or self.basket.repo == repo:
            then()
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.basket.for_repo(repo)
                then()
        self.push_screen(DiscardBasketScreen(self.basket, why), answered)
