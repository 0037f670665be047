"""Small recurrent spiking network demo using custom surrogate-gradient autograd Functions."""
