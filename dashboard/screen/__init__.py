"""The single screen: layout, panels and the callbacks that keep it live.

`layout.skeleton` is the app layout; `callbacks` registers the global
`dash.callback`s when imported; `frame` computes everything the screen shows
from one `CityView`, once per view for every client of the process.
"""
