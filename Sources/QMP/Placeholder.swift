// QMP: json-c codec, stream decoder and QMPClient. See QMPClient.swift.
