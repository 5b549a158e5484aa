# boot.py for MicroPython boards whose firmware updates replace the application's files (profiles with
# FOTA = "files": Pico W, Pico 2 W). `make deploy` copies it. Before main.py runs, it swaps in an update
# that object 5 downloaded, keeping the old files, and puts the old files back when the new ones did not
# register with the server before the next reset (the server then sees Update Result 8).
from lwm2m_mpy.fota import guard

guard.boot()
