"""The fewest groups of templates in which every two members may share an env."""


def clique_cover(names: list[str], compatible: set, forbidden: list[frozenset] = ()) -> list[list[str]]:
    """An exact search (the template count is small); ``forbidden`` groups are never formed."""
    def ok(a, b):
        return (a, b) in compatible or (b, a) in compatible

    best: list[list[str]] | None = None

    def place(i, groups):
        nonlocal best
        if best is not None and len(groups) >= len(best):
            return
        if i == len(names):
            best = [list(g) for g in groups]
            return
        name = names[i]
        for g in groups:
            if all(ok(name, m) for m in g) and not any(f <= frozenset(g + [name]) for f in forbidden):
                g.append(name)
                place(i + 1, groups)
                g.pop()
        groups.append([name])
        place(i + 1, groups)
        groups.pop()

    place(0, [])
    return best or []
