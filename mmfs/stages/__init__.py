"""The data path's stages, one file each, and the frozen item types they share (`items`).

decode (per item, CPU) -> analysis -> speech -> text -> encode (the models) -> align -> rows ->
commit (`batch`). Each batch stage is a `base.Stage`: it returns new items and never edits what an
earlier stage produced. No stage imports a runner or the run driver.
"""
