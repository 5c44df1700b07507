"""Redraw only what changed: data artists blitted over a cached background (the explorer's).

A full figure draw renders every axes, tick label, slider and radio label; at the explorer's
size that is most of a change's cost. Here the data artists (lines, markers, the status
text) are *animated*: a full draw leaves them out and :class:`Blitter` keeps that picture.
A change then restores it, redraws the decorations of the few axes that changed (a panel
whose limits moved, a slider that moved), draws the data artists and blits. Backends without
blitting (ipympl, PDF…) get an ordinary ``draw_idle`` of everything.
"""

from __future__ import annotations

import math

from matplotlib.patches import Rectangle
from matplotlib.transforms import Bbox, IdentityTransform

#: Pixels added around an axes' tight box when it is erased: a spine of width w sits on the box
#: edge, snapped to a pixel centre, and anti-aliasing touches one pixel more.
PAD = 3


class Blitter:
    """Keep a figure's background and redraw its changing parts on it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    artists : sequence of Artist
        The data artists, redrawn at every :meth:`update`; they must belong to axes (an
        animated figure-level artist would be left out of ``savefig``).
    enabled : bool
        False redraws the whole figure at every update (as before blitting; the benchmark's
        baseline). Blitting is also off when the canvas cannot blit.

    Notes
    -----
    The result is the picture a full draw makes: the erased boxes are whole pixels, every
    decoration is drawn once on a clean box, and the data artists come last as in a full
    draw (``tests/test_explore.py`` compares the two pixel by pixel).
    """

    def __init__(self, fig, artists, enabled=True):
        self.fig = fig
        self.artists = list(artists)
        self.live = enabled and bool(getattr(fig.canvas, "supports_blit", False))
        for a in self.artists:
            a.set_animated(self.live)
        self._background = None
        self._regions = {}          # axes -> display box its decorations covered when drawn
        self._eraser = Rectangle((0, 0), 1, 1, transform=IdentityTransform(),
                                 facecolor=fig.patch.get_facecolor(), edgecolor="none",
                                 antialiased=False, figure=fig)
        fig.canvas.mpl_connect("draw_event", self._on_draw)

    def _on_draw(self, event):
        """After a full draw everything but the data is on the canvas: keep it, add the data."""
        canvas = self.fig.canvas
        if not self.live or event.canvas is not canvas or canvas.is_saving():
            return
        self._background = canvas.copy_from_bbox(self.fig.bbox)
        self._regions = {ax: self._region(ax, event.renderer) for ax in self.fig.axes}
        self._draw_artists()
        # no blit: the backend shows the canvas once its draw returns

    def update(self, dirty=()):
        """Show the artists' new data; ``dirty`` axes get their decorations redrawn first.

        Axes whose box overlaps an erased box are redrawn too. Before the first full draw, or
        on a backend without blitting, this is ``canvas.draw_idle()``.
        """
        canvas = self.fig.canvas
        if not self.live or self._background is None or not canvas.supports_blit:
            canvas.draw_idle()
            return
        canvas.restore_region(self._background)
        if dirty:
            self._redraw_axes(set(dirty), canvas.get_renderer())
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        self._draw_artists()
        canvas.blit(self.fig.bbox)

    def _redraw_axes(self, dirty, renderer):
        # erase the old and the new box of each, closing over the axes those boxes overlap
        boxes = {}
        todo = list(dirty)
        while todo:
            ax = todo.pop()
            new = self._region(ax, renderer)
            old = self._regions.get(ax, new)
            boxes[ax] = Bbox.union([old, new])
            self._regions[ax] = new
            todo += [other for other, box in self._regions.items()
                     if other not in boxes and other not in todo and box.overlaps(boxes[ax])]
        for box in boxes.values():
            self._eraser.set_bounds(box.x0, box.y0, box.width, box.height)
            self.fig.draw_artist(self._eraser)
        for ax in self.fig.axes:                 # the full draw's order
            if ax in boxes:
                self.fig.draw_artist(ax)

    def _draw_artists(self):
        for a in self.artists:
            self.fig.draw_artist(a)

    @staticmethod
    def _region(ax, renderer):
        """The whole pixels that ``ax`` paints: its tight box and PAD pixels around it (the tight
        box leaves out line widths, pixel snapping and anti-aliasing)."""
        bb = Bbox.union([ax.get_tightbbox(renderer), ax.bbox])
        return Bbox.from_extents(math.floor(bb.x0) - PAD, math.floor(bb.y0) - PAD,
                                 math.ceil(bb.x1) + PAD, math.ceil(bb.y1) + PAD)
