"""The task functions every peer runs; a module of their own so that worker processes
import them by name (a function defined in a script's __main__ cannot always be found)."""


def noop(i):
    return i


def echo(value):
    return value
