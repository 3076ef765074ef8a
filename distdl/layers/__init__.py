"""Layers by family; `from distdl.layers import Dense` as in Keras."""
from .base import Layer, RunContext, SymbolicTensor, deserialize, serialize
from .convolutional import Conv1D, Conv2D, Convolution1D, Convolution2D
from .core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
from .embedding import Embedding
from .lambda_layer import Lambda
from .masking import Masking
from .merge import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average, concatenate,
                    dot, maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization, LayerNormalization
from .pooling import (AveragePooling1D, AveragePooling2D, AvgPool1D, AvgPool2D, GlobalAveragePooling1D,
                      GlobalAveragePooling2D, GlobalAvgPool1D, GlobalAvgPool2D, GlobalMaxPool1D, GlobalMaxPool2D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPool1D, MaxPool2D, MaxPooling1D, MaxPooling2D)
from .recurrent import GRU, LSTM, SimpleRNN
from .tensor_op import TensorOp
from .reshaping import (Cropping1D, Cropping2D, Permute, RepeatVector, UpSampling1D, UpSampling2D,
                        ZeroPadding1D, ZeroPadding2D)
from .wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer", "RunContext", "SymbolicTensor", "deserialize", "serialize", "Conv1D", "Conv2D", "Convolution1D",
    "Convolution2D", "Activation", "Dense", "Dropout", "Flatten", "Input", "InputLayer", "Reshape",
    "Embedding", "Lambda", "Masking", "Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum",
    "Multiply", "Subtract", "add", "average", "concatenate", "dot", "maximum", "minimum", "multiply",
    "subtract", "BatchNormalization", "LayerNormalization", "AveragePooling1D", "AveragePooling2D",
    "AvgPool1D", "AvgPool2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAvgPool1D",
    "GlobalAvgPool2D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "MaxPool1D", "MaxPool2D", "MaxPooling1D", "MaxPooling2D", "GRU", "LSTM", "SimpleRNN", "TensorOp",
    "Cropping1D", "Cropping2D", "Permute", "RepeatVector", "UpSampling1D", "UpSampling2D", "ZeroPadding1D",
    "ZeroPadding2D", "Bidirectional", "TimeDistributed"
]
