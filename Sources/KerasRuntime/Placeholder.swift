import KerasIR
