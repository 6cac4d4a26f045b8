enum SerialPlaceholder {}
