"""Train LeNet-5 on the bundled 8x8 digits (upsampled to 32x32) in about fifteen lines.

    pip install . && python examples/python/quickstart.py
"""

import numpy as np

import cnncore
from cnncore import data, models, nn, optim

cnncore.manual_seed(0)
images, labels = data.load_digits()                      # (1797, 1, 8, 8) in [0, 1], int64
images = images.repeat(4, axis=2).repeat(4, axis=3)      # 32x32, as LeNet-5 expects
images = (images - images.mean()) / images.std()
order = np.random.default_rng(0).permutation(len(images))
test, train = order[:360], order[360:]
train_set = data.TensorDataset(cnncore.tensor(images[train]), cnncore.tensor(labels[train]))
loader = data.DataLoader(train_set, batch_size=32, shuffle=True, generator=0)

model = models.lenet5(num_classes=10)
opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()
for epoch in range(10):
    for x, y in loader:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    model.eval()
    with cnncore.no_grad():
        pred = model(cnncore.tensor(images[test])).numpy().argmax(1)
    model.train()
    print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {(pred == labels[test]).mean():.3f}")
