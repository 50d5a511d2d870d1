"""Variants of the solution cells of 00_pytorch (float32; the hidden tests add float64 data).

Not variants: a gradient derived by hand in mse_and_gradient (the task asks for autograd, but its
values are right, and no test can tell them apart), and a training loop without shuffling (the task
asks for a new random order in every epoch, which is not graded)."""

from grading.variants import changed

# The reference answers; each mistake changes a line or two of them.
MSE = '''
def mse_and_gradient(w, b, X, y):
    w = w.detach().clone().requires_grad_(True)
    J = ((X @ w + b - y) ** 2).mean()
    J.backward()
    return J.item(), w.grad
'''

TRAIN = '''
def train(model, X, y, cost_function=mse_cost, epochs=20, batch_size=100, lr=0.05, device="cpu"):
    model.to(device)
    X, y = X.to(device), y.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    costs = []
    for epoch in range(epochs):
        total = 0.0
        order = torch.randperm(len(X), device=device)
        for i in range(0, len(X), batch_size):
            index = order[i : i + batch_size]
            cost = cost_function(model, X[index], y[index])
            optimizer.zero_grad()
            cost.backward()
            optimizer.step()
            total += cost.item() * len(index)
        costs.append(total / len(X))
    return costs
'''


CELLS = {
    "pt-distances": {
        "correct": {
            "cdist squared": '''
def squared_distances(X, F):
    return torch.cdist(X, F) ** 2
''',
            "expansion |x|^2 - 2 x.f + |f|^2, clamped": '''
def squared_distances(X, F):
    d = (X ** 2).sum(dim=1, keepdim=True) - 2 * X @ F.T + (F ** 2).sum(dim=1)
    return d.clamp(min=0)
''',
            "double loop, float64": '''
def squared_distances(X, F):
    out = torch.zeros(len(X), len(F), dtype=torch.float64)
    for n in range(len(X)):
        for k in range(len(F)):
            out[n, k] = ((X[n].double() - F[k].double()) ** 2).sum()
    return out
''',
        },
        "wrong": {
            "distances, not squared (cdist)": '''
def squared_distances(X, F):
    return torch.cdist(X, F)
''',
            "mean over the coordinates": '''
def squared_distances(X, F):
    return ((X[:, None, :] - F[None, :, :]) ** 2).mean(dim=-1)
''',
            "square forgotten": '''
def squared_distances(X, F):
    return (X[:, None, :] - F[None, :, :]).sum(dim=-1)
''',
            "transposed (K, N)": '''
def squared_distances(X, F):
    return ((F[:, None, :] - X[None, :, :]) ** 2).sum(dim=-1)
''',
            "expansion with the wrong sign": '''
def squared_distances(X, F):
    return (X ** 2).sum(dim=1, keepdim=True) + 2 * X @ F.T + (F ** 2).sum(dim=1)
''',
        },
    },
    "pt-autograd": {
        "correct": {
            "torch.autograd.grad": '''
def mse_and_gradient(w, b, X, y):
    w = w.detach().clone().requires_grad_(True)
    J = ((X @ w + b - y) ** 2).mean()
    (grad,) = torch.autograd.grad(J, w)
    return J.item(), grad
''',
            "mse_loss, sum / N, float()": '''
def mse_and_gradient(w, b, X, y):
    w = w.detach().clone().requires_grad_()
    J = torch.nn.functional.mse_loss(X @ w + b, y, reduction="sum") / len(y)
    J.backward()
    return float(J), w.grad.detach()
''',
            "float64 throughout": '''
def mse_and_gradient(w, b, X, y):
    w64 = w.detach().double().clone().requires_grad_(True)
    J = ((X.double() @ w64 + b - y.double()) ** 2).mean()
    J.backward()
    return J.item(), w64.grad
''',
        },
        "wrong": {
            "sum instead of mean": changed(MSE, (".mean()", ".sum()")),
            "J returned as a tensor": changed(MSE, ("return J.item()", "return J.detach()")),
            "the caller's w (gradients accumulate)": '''
def mse_and_gradient(w, b, X, y):
    w.requires_grad_(True)
    J = ((X @ w + b - y) ** 2).mean()
    J.backward()
    return J.item(), w.grad.clone()
''',
            "bias forgotten": changed(MSE, ("X @ w + b - y", "X @ w - y")),
            "a gradient step on the caller's w": '''
def mse_and_gradient(w, b, X, y):
    w2 = w.detach().clone().requires_grad_(True)
    J = ((X @ w2 + b - y) ** 2).mean()
    J.backward()
    with torch.no_grad():
        w -= 0.1 * w2.grad
    return J.item(), w2.grad
''',
        },
    },
    "pt-train": {
        "correct": {
            "DataLoader over a TensorDataset": '''
def train(model, X, y, cost_function=mse_cost, epochs=20, batch_size=100, lr=0.05, device="cpu"):
    from torch.utils.data import DataLoader, TensorDataset
    model = model.to(device)
    loader = DataLoader(TensorDataset(X.to(device), y.to(device)), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    costs = []
    for _ in range(epochs):
        total, count = 0.0, 0
        for xb, yb in loader:
            optimizer.zero_grad()
            cost = cost_function(model, xb, yb)
            cost.backward()
            optimizer.step()
            total += cost.item() * len(xb)
            count += len(xb)
        costs.append(total / count)
    return costs
''',
            "permuted copies split into chunks, a tensor total": '''
def train(model, X, y, cost_function=mse_cost, epochs=20, batch_size=100, lr=0.05, device="cpu"):
    model = model.to(device)
    X = X.to(device)
    y = y.to(device)
    opt = torch.optim.Adam(model.parameters(), lr)
    history = []
    for _ in range(epochs):
        perm = torch.randperm(X.shape[0]).to(device)
        batch_costs, sizes = [], []
        for xb, yb in zip(X[perm].split(batch_size), y[perm].split(batch_size)):
            cost = cost_function(model, xb, yb)
            model.zero_grad(set_to_none=True)
            cost.backward()
            opt.step()
            batch_costs.append(cost.detach())
            sizes.append(xb.shape[0])
        weights = torch.tensor(sizes, dtype=torch.float64)
        history.append(float((torch.stack(batch_costs).double().cpu() * weights).sum() / weights.sum()))
    return history
''',
        },
        "wrong": {
            "last partial batch skipped": changed(
                TRAIN,
                ("range(0, len(X), batch_size)", "range(0, len(X) - batch_size + 1, batch_size)"),
                ("total / len(X)", "total / (len(X) // batch_size * batch_size)")),
            "batch costs averaged without weighting": changed(
                TRAIN,
                ("total += cost.item() * len(index)", "total += cost.item()"),
                ("total / len(X)", "total / math.ceil(len(X) / batch_size)")),
            "gradients never zeroed": changed(TRAIN, ("            optimizer.zero_grad()\n", "")),
            "optimizer.step forgotten": changed(TRAIN, ("            optimizer.step()\n", "")),
            "costs kept as tensors": changed(
                TRAIN,
                ("total += cost.item() * len(index)", "total = total + cost.detach() * len(index)")),
            "a running total over the epochs": changed(
                TRAIN,
                ("    for epoch in range(epochs):\n        total = 0.0\n", "    total = 0.0\n    for epoch in range(epochs):\n")),
        },
    },
}
