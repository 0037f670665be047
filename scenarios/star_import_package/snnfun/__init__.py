from .autograd import *
