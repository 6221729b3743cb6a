"""Writes src/ziggurat_tables.rs: the 256-layer ziggurat of the standard normal.

The layers of Marsaglia and Tsang, "The ziggurat method for generating random
variables" (J. Stat. Softw. 5(8), 2000), for the unnormalised density
f(x) = exp(-x^2 / 2): a base strip (the rectangle [0, x_0) x [0, f(r)) and the tail
beyond r) and 255 rectangles, all of the same area v. x_1 = r, x_{i+1} solves
f(x_{i+1}) = f(x_i) + v / x_i, x_0 = v / f(r), and r is the root of x_256 = 0 (the top
layer ends at the mode). Computed here at 60 significant digits with mpmath and
rounded once to the nearest double.

Run from the crate's directory: python3 tools/ziggurat_tables.py > src/ziggurat_tables.rs
"""

import mpmath as mp

mp.mp.dps = 60
LAYERS = 256


def f(x):
    return mp.exp(-x * x / 2)


def area(r):
    # The base strip: the rectangle under f(r) plus the tail beyond r.
    return r * f(r) + mp.sqrt(mp.pi / 2) * mp.erfc(r / mp.sqrt(2))


def top(r):
    """f at the top of the last layer, minus f(0) = 1: zero at the table's r."""
    v = area(r)
    x = r
    for _ in range(LAYERS - 2):
        y = f(x) + v / x
        if y >= 1:
            return y  # past the mode already: r too small, a positive value
        x = mp.sqrt(-2 * mp.log(y))
    return f(x) + v / x - 1


r = mp.findroot(top, (mp.mpf("3.6"), mp.mpf("3.7")), solver="bisect", tol=mp.mpf(10) ** -50)
v = area(r)
xs = [v / f(r), r]
for _ in range(LAYERS - 2):
    xs.append(mp.sqrt(-2 * mp.log(f(xs[-1]) + v / xs[-1])))
xs.append(mp.mpf(0))
fs = [f(x) for x in xs]


def lit(x):
    return repr(float(x))


print("// Written by tools/ziggurat_tables.py (mpmath, 60 digits); do not edit.")
print("//! The 256-layer ziggurat of the standard normal (Marsaglia and Tsang 2000).")
print()
print("/// Start of the tail, `r = x_1`.")
print(f"pub(crate) const R: f64 = {lit(r)};")
print("/// Layer edges `x_0 = v / f(r) > x_1 = r > .. > x_256 = 0`.")
print(f"pub(crate) const X: [f64; {LAYERS + 1}] = [")
for x in xs:
    print(f"    {lit(x)},")
print("];")
print("/// The density at the edges, `f(x_i) = exp(-x_i^2 / 2)`.")
print(f"pub(crate) const F: [f64; {LAYERS + 1}] = [")
for y in fs:
    print(f"    {lit(y)},")
print("];")
